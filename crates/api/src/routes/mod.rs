pub mod companies;
pub mod leads;
pub mod me;
pub mod ops;

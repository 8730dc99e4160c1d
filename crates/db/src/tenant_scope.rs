//! The only door to tenant-owned rows. A `TenantScope` cannot exist without a `TenantId`, and
//! every query it builds is filtered on `company_id`, so a row of tenant A is invisible through
//! tenant B's scope: reads find nothing, writes change nothing.

use otto_domain::TenantId;
use sea_orm::sea_query::IntoValueTuple;
use sea_orm::{
    ActiveModelBehavior, ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, DeleteMany,
    IntoActiveModel, PrimaryKeyToColumn, PrimaryKeyTrait, QueryFilter, Select, UpdateMany, Value,
};

use crate::entities::TenantOwned;

pub struct TenantScope<'c, C: ConnectionTrait> {
    conn: &'c C,
    tenant: TenantId,
}

impl<'c, C: ConnectionTrait> TenantScope<'c, C> {
    pub fn new(conn: &'c C, tenant: TenantId) -> Self {
        Self { conn, tenant }
    }

    pub fn tenant(&self) -> &TenantId {
        &self.tenant
    }

    pub fn conn(&self) -> &'c C {
        self.conn
    }

    /// `SELECT ... WHERE company_id = <tenant>`; callers add their own filters.
    pub fn select<E: TenantOwned>(&self) -> Select<E> {
        E::find().filter(E::company_column().eq(self.tenant.as_str()))
    }

    /// One row by primary key, only if it belongs to this tenant.
    ///
    /// # Errors
    /// On database failure.
    pub async fn find_by_id<E, K>(&self, id: K) -> Result<Option<E::Model>, DbErr>
    where
        E: TenantOwned,
        K: Into<<E::PrimaryKey as PrimaryKeyTrait>::ValueType>,
    {
        E::find_by_id(id)
            .filter(E::company_column().eq(self.tenant.as_str()))
            .one(self.conn)
            .await
    }

    /// Inserts a row stamped with this tenant, whatever `company_id` the model carried.
    ///
    /// # Errors
    /// On database failure or a constraint violation.
    pub async fn insert<E, A>(&self, model: A) -> Result<E::Model, DbErr>
    where
        E: TenantOwned,
        A: ActiveModelTrait<Entity = E> + ActiveModelBehavior + Send,
        E::Model: IntoActiveModel<A>,
    {
        let mut model = model;
        model.set(E::company_column(), Value::from(self.tenant.as_str()));
        model.insert(self.conn).await
    }

    /// `UPDATE ... WHERE company_id = <tenant>`; callers add their own filters.
    pub fn update_many<E: TenantOwned>(&self) -> UpdateMany<E> {
        E::update_many().filter(E::company_column().eq(self.tenant.as_str()))
    }

    /// `DELETE ... WHERE company_id = <tenant>`; callers add their own filters.
    pub fn delete_many<E: TenantOwned>(&self) -> DeleteMany<E> {
        E::delete_many().filter(E::company_column().eq(self.tenant.as_str()))
    }

    /// Applies the set fields of `changes` to the row `id` if it belongs to this tenant.
    /// Returns whether a row was changed. `company_id` can never be changed through a scope.
    ///
    /// # Errors
    /// On database failure.
    pub async fn update_by_id<E, A, K>(&self, id: K, changes: A) -> Result<bool, DbErr>
    where
        E: TenantOwned,
        A: ActiveModelTrait<Entity = E> + Send,
        K: IntoValueTuple,
    {
        let mut changes = changes;
        changes.not_set(E::company_column());
        let mut query = self.update_many::<E>().set(changes);
        let keys = <E::PrimaryKey as sea_orm::Iterable>::iter();
        for (key, value) in keys.zip(id.into_value_tuple()) {
            query = query.filter(key.into_column().eq(value));
        }
        Ok(query.exec(self.conn).await?.rows_affected > 0)
    }
}

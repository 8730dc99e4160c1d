//! A lead that texted `STOP` (or `UNSUBSCRIBE`, `CANCEL`, `END`, `QUIT`) is opted out of SMS
//! until it texts `START` (SPEC section 13).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("leads")
                    .add_column(
                        ColumnDef::new("sms_opted_out")
                            .boolean()
                            .not_null()
                            .default(false),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("leads")
                    .drop_column("sms_opted_out")
                    .to_owned(),
            )
            .await
    }
}

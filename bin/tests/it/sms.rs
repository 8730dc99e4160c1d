//! SMS consent from inbound texts (SPEC section 13): a signed Twilio SMS whose whole body is a
//! `STOP`-family word opts its lead out, `START` back in; anything else changes nothing; a
//! redelivery is idempotent.

use otto_db::entities::lead;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use crate::helpers::{TestDatabase, TestResult};
use crate::webhooks::{OUR_NUMBER, TENANT, post_twilio, webhook_app};

on_both_databases!(stop_and_start_texts_set_the_leads_sms_consent);

const CUSTOMER: &str = "+15559990000";

async fn opted_out(app: &crate::helpers::TestApp) -> Result<bool, Box<dyn std::error::Error>> {
    let row = lead::Entity::find()
        .filter(lead::Column::CompanyId.eq(TENANT))
        .filter(lead::Column::Phone.eq(CUSTOMER))
        .one(&app.ctx.db)
        .await?
        .ok_or("the texting customer has a lead")?;
    Ok(row.sms_opted_out)
}

async fn stop_and_start_texts_set_the_leads_sms_consent(db: TestDatabase) -> TestResult {
    let app = webhook_app(db).await?;
    let text = |sid: &'static str, body: &'static str| {
        [
            ("MessageSid", sid),
            ("From", CUSTOMER),
            ("To", OUR_NUMBER),
            ("Body", body),
        ]
    };
    let steps = [
        ("SMconsent1", "Is Tuesday free?", false),
        ("SMconsent2", " stop ", true),
        ("SMconsent3", "stop calling me maybe", true),
        ("SMconsent4", "START", false),
        ("SMconsent5", "Unsubscribe", true),
    ];
    for (sid, body, expected) in steps {
        let answer = post_twilio(&app, "/webhooks/twilio/sms", &text(sid, body)).await?;
        assert_eq!(answer.status(), 200, "{body}");
        assert_eq!(opted_out(&app).await?, expected, "after {body:?}");
    }
    // Twilio redelivering an old START changes nothing: the delivery is a duplicate.
    let again = post_twilio(&app, "/webhooks/twilio/sms", &text("SMconsent4", "START")).await?;
    assert_eq!(again.status(), 200);
    assert!(
        opted_out(&app).await?,
        "a redelivered START is not a new one"
    );
    assert!(
        crate::webhooks::events(&app, "lead.updated").await? >= 3,
        "each change is an event"
    );
    Ok(())
}

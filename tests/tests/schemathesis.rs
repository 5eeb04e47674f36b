//! The OpenAPI document against the live server: schemathesis (PyPI; the
//! test command installs it) reads `/openapi.json` as the server serves it,
//! with real ids as the parameters' examples, and calls every endpoint with
//! them and with what it generates: no answer may be a 5xx, and every answer
//! must match the document (status, content type, schema), refuse invalid
//! input and require a token.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use billing_proto::v1 as pb;
use billing_tests::{
    Backend, attach_card, backend_tests, business_invoices, buy_offering, provision_business, service_token,
    spawn_jwt_app, tool,
};
use serde_json::Value;

backend_tests!(schemathesis_finds_every_answer_in_the_document);

/// What schemathesis checks; `positive_data_acceptance` is left out because
/// an id that matches the schema's `string` is still mostly not found.
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,\
response_schema_conformance,negative_data_rejection,ignored_auth,unsupported_method";

async fn schemathesis_finds_every_answer_in_the_document(backend: Backend) {
    let app = spawn_jwt_app(backend, |_| {}).await;
    app.load_demo_catalog().await;
    provision_business(&app, "biz-1").await;
    attach_card(&app, "biz-1", "pm_card_visa").await;
    let pro: pb::Subscription = buy_offering(&app, "biz-1", "pro-monthly")
        .await
        .unwrap()
        .subscription
        .unwrap();
    let invoice = business_invoices(&app, "biz-1").await.remove(0);

    let served = reqwest::get(format!("{}/openapi.json", app.http_base()))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let mut document: Value = serde_json::from_slice(&served).unwrap();
    let examples = [
        ("subscription_id", pro.id.as_str()),
        ("business_id", "biz-1"),
        ("product_code", "website"),
        ("invoice_id", invoice.id.as_str()),
    ];
    for operation in document["paths"].as_object_mut().unwrap().values_mut() {
        let Some(parameters) = operation.pointer_mut("/get/parameters").and_then(Value::as_array_mut) else {
            continue;
        };
        for parameter in parameters {
            if let Some((_, example)) = examples.iter().find(|(name, _)| parameter["name"] == *name) {
                parameter["example"] = Value::from(*example);
            }
        }
    }
    let scratch = tempfile::tempdir().unwrap();
    let schema = scratch.path().join("openapi.json");
    std::fs::write(&schema, serde_json::to_vec(&document).unwrap()).unwrap();

    let output = tokio::process::Command::new(tool("SCHEMATHESIS", "schemathesis"))
        .current_dir(scratch.path())
        .args(["run", schema.to_str().unwrap(), "--url", &app.http_base()])
        .args([
            "--header",
            &format!("Authorization: Bearer {}", service_token("platform")),
        ])
        .args(["--checks", CHECKS])
        .args(["--phases", "examples,coverage,fuzzing"])
        .args(["--max-examples", "40", "--seed", "1", "--workers", "1"])
        .args(["--generation-database", "none", "--no-color"])
        .output()
        .await
        .expect("run schemathesis");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "schemathesis found answers outside the document:\n{report}"
    );
    // It did call the endpoints: every operation of the document was tested.
    let operations = document["paths"].as_object().unwrap().len();
    assert!(operations >= 7, "{document}");
    assert!(
        report.contains(&format!("Tested: {operations}\n")),
        "not every operation was tested:\n{report}"
    );
    app.stop().await.unwrap();
}

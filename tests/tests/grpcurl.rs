//! The operator's debugging path: the real grpcurl binary, through server
//! reflection only (no proto files), against the real server.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use billing_app::{Catalog, SystemClock};
use billing_server::demo;
use billing_storage::{Store, StoreOptions};
use billing_tests::{
    Backend, TestApp, backend_tests, billingd, grpcurl, provision_business, repository_root, spawn_app, spawn_app_with,
    spawn_manual_app,
};

backend_tests!(
    grpcurl_lists_describes_calls_and_shows_error_reasons,
    every_readme_grpcurl_example_works_as_written,
    the_readme_subscription_walkthrough_runs_as_written,
    the_readme_checkout_walkthrough_runs_as_written,
    the_readme_token_walkthrough_runs_as_written,
    the_readme_json_walkthrough_runs_as_written,
);

struct Outcome {
    success: bool,
    output: String,
}

/// Runs a shell command line in which `grpcurl` and the README's address
/// stand for the installed binary and the test server.
async fn run(app: &TestApp, command_line: &str) -> Outcome {
    let command_line = command_line.replace("127.0.0.1:50051", &app.addr.to_string());
    let output = tokio::process::Command::new("bash")
        .arg("-c")
        .arg(&command_line)
        .env("PATH", path_with_grpcurl())
        .output()
        .await
        .expect("run bash");
    Outcome {
        success: output.status.success(),
        output: format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    }
}

fn path_with_grpcurl() -> std::ffi::OsString {
    let binary = grpcurl();
    let directory = binary.parent().expect("grpcurl has a directory").to_path_buf();
    let mut paths = vec![directory];
    paths.extend(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()));
    std::env::join_paths(paths).expect("join PATH")
}

async fn grpcurl_lists_describes_calls_and_shows_error_reasons(backend: Backend) {
    let app = spawn_app(backend).await;

    let list = run(&app, "grpcurl -plaintext 127.0.0.1:50051 list").await;
    assert!(list.success, "{}", list.output);
    for service in [
        "billing.v1.CatalogService",
        "billing.v1.CheckoutService",
        "billing.v1.InvoiceService",
        "billing.v1.PaymentMethodService",
        "billing.v1.SubscriptionService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
    ] {
        assert!(
            list.output.lines().any(|line| line == service),
            "{service} not listed:\n{}",
            list.output
        );
    }

    let describe = run(
        &app,
        "grpcurl -plaintext 127.0.0.1:50051 describe billing.v1.CatalogService",
    )
    .await;
    assert!(describe.success, "{}", describe.output);
    assert!(
        describe
            .output
            .contains("rpc CreateOffering ( .billing.v1.CreateOfferingRequest )"),
        "{}",
        describe.output
    );

    let call = run(
        &app,
        r#"grpcurl -plaintext -d '{"code": "website", "display_name": "Website"}' 127.0.0.1:50051 billing.v1.CatalogService/CreateProduct"#,
    )
    .await;
    assert!(call.success, "{}", call.output);
    assert!(call.output.contains(r#""id": "prd_"#), "{}", call.output);
    assert!(call.output.contains(r#""code": "website""#), "{}", call.output);

    let error = run(
        &app,
        r#"grpcurl -plaintext -d '{"offering": {"code": ""}}' 127.0.0.1:50051 billing.v1.CatalogService/CreateOffering"#,
    )
    .await;
    assert!(!error.success, "{}", error.output);
    assert!(error.output.contains("Code: InvalidArgument"), "{}", error.output);
    // grpcurl can decode the details only if reflection serves google.rpc.
    assert!(error.output.contains(r#""reason":"CODE_INVALID""#), "{}", error.output);
    assert!(
        error.output.contains("type.googleapis.com/google.rpc.BadRequest"),
        "{}",
        error.output
    );
    assert!(error.output.contains(r#""field":"offering.code""#), "{}", error.output);
}

/// One README example: a ```sh block that starts with `grpcurl`.
struct Example {
    command: String,
    /// From a trailing `# fails: REASON`.
    fails_with: Option<String>,
    /// The ```text block right after it, if any: what the README shows it
    /// prints.
    shown: Option<String>,
}

fn readme_examples() -> Vec<Example> {
    let readme = std::fs::read_to_string(repository_root().join("README.md")).expect("read README.md");
    let mut examples: Vec<Example> = Vec::new();
    let mut block: Option<(&str, String)> = None;
    // Whether the last block closed was an example, with only blank lines since.
    let mut after_example = false;
    for line in readme.lines() {
        match (&mut block, line.trim_end()) {
            (None, fence @ ("```sh" | "```text")) => block = Some((fence, String::new())),
            (Some((fence, text)), "```") => {
                if *fence == "```text" {
                    if after_example && let Some(example) = examples.last_mut() {
                        example.shown = Some(text.clone());
                    }
                    after_example = false;
                } else if text.starts_with("grpcurl ") && !text.contains("SubscriptionService") {
                    let (command, fails_with) = match text.trim_end().rsplit_once("# fails: ") {
                        Some((command, reason)) => (command.trim_end().to_owned(), Some(reason.trim().to_owned())),
                        None => (text.clone(), None),
                    };
                    examples.push(Example {
                        command,
                        fails_with,
                        shown: None,
                    });
                    after_example = true;
                } else {
                    after_example = false;
                }
                block = None;
            }
            (Some((_, text)), _) => {
                text.push_str(line);
                text.push('\n');
            }
            (None, "") => {}
            (None, _) => after_example = false,
        }
    }
    examples
}

async fn every_readme_grpcurl_example_works_as_written(backend: Backend) {
    let examples = readme_examples();
    assert!(
        examples.len() >= 10,
        "found only {} grpcurl examples in README.md",
        examples.len()
    );
    let app = spawn_app(backend).await;
    // What `cargo run -- load-demo` does.
    let store = Store::connect(&StoreOptions::new(app.database_url())).await.unwrap();
    demo::load(&Catalog::new(store.clone(), Arc::new(SystemClock)))
        .await
        .unwrap();
    store.close().await.unwrap();

    let shown = examples.iter().filter(|example| example.shown.is_some()).count();
    assert!(
        shown >= 3,
        "found only {shown} examples with their output shown in README.md"
    );
    for example in examples {
        let outcome = run(&app, &example.command).await;
        if let Some(shown) = &example.shown {
            assert_eq!(
                outcome.output.trim_end(),
                shown.trim_end(),
                "README example prints something else than it shows:\n{}",
                example.command
            );
        }
        match &example.fails_with {
            None => assert!(
                outcome.success,
                "README example failed:\n{}\n{}",
                example.command, outcome.output
            ),
            Some(reason) => {
                assert!(
                    !outcome.success,
                    "README example should fail:\n{}\n{}",
                    example.command, outcome.output
                );
                assert!(
                    outcome.output.contains(&format!(r#""reason":"{reason}""#)),
                    "README example should fail with {reason}:\n{}\n{}",
                    example.command,
                    outcome.output
                );
            }
        }
    }
}

/// The README's script block that starts with `# first_line`, run as a
/// script that stops at the first failing command.
fn readme_walkthrough(first_line: &str) -> String {
    let readme = std::fs::read_to_string(repository_root().join("README.md")).expect("read README.md");
    let marker = format!("```sh\n# {first_line}");
    let start = readme.find(&marker).expect("the walkthrough block") + "```sh\n".len();
    let end = start + readme[start..].find("```").expect("the end of the walkthrough block");
    format!("set -euo pipefail\n{}", &readme[start..end])
}

async fn the_readme_subscription_walkthrough_runs_as_written(backend: Backend) {
    // What the README's environment sets up.
    let app = spawn_manual_app(backend, "2026-03-10T09:00:00Z").await;
    app.load_demo_catalog().await;
    let outcome = run(&app, &readme_walkthrough("Provision business")).await;
    assert!(outcome.success, "the walkthrough failed:\n{}", outcome.output);
    let output = &outcome.output;
    assert!(output.contains("subscription: sub_"), "{output}");
    assert!(
        output.contains(r#""offeringCode": "plus-monthly""#),
        "no pending downgrade shown:\n{output}"
    );
    assert!(output.contains("SUBSCRIPTION_STATE_CANCELED"), "{output}");
    assert!(output.contains("SUBSCRIBER_STATUS_CANCELED"), "{output}");
    assert!(output.contains("SUBSCRIPTION_STATE_EXPIRED"), "{output}");
    assert!(output.contains(r#""action": "job:expire""#), "{output}");
    assert!(
        output.contains("INVOICE_STATUS_PAID"),
        "the first month was paid:\n{output}"
    );
    let after_advance = &output[output.find("jobsRun").expect("AdvanceClock answered")..];
    assert!(
        after_advance.contains(r#""offeringCode": "free""#),
        "no fallback to the free package:\n{output}"
    );
}

async fn the_readme_checkout_walkthrough_runs_as_written(backend: Backend) {
    let app = spawn_app(backend).await;
    app.load_demo_catalog().await;
    let walkthrough = readme_walkthrough("Checkout for a new business");
    // Pasted twice: the second paste works as the first did.
    for paste in 1..=2 {
        let outcome = run(&app, &walkthrough).await;
        assert!(
            outcome.success,
            "paste {paste} of the checkout walkthrough failed:\n{}",
            outcome.output
        );
        let output = &outcome.output;
        assert!(
            output.contains(&format!("open in a browser: {}/checkout/", app.http_base())),
            "paste {paste}: {output}"
        );
        assert!(
            output.contains(r#"id="amount-due-today">30.00 USD"#),
            "paste {paste}: {output}"
        );
        assert!(
            output
                // grpcurl's JSON writes `&` as `\u0026`.
                .contains(r#""redirectUrl": "http://localhost:3000/billing/done?business_id=globex-"#),
            "paste {paste}: {output}"
        );
        assert!(
            output.contains("CHECKOUT_SESSION_STATUS_COMPLETED"),
            "paste {paste}: {output}"
        );
        assert!(output.trim_end().ends_with("410"), "paste {paste}: {output}");
    }
}

/// The server the README's token walkthrough starts: `auth.mode = "jwt"`
/// with the secret `script` exports, the demo catalog loaded.
async fn readme_token_server(backend: Backend, script: &str) -> (TestApp, String) {
    let secret = script
        .split("BILLING__AUTH__HS256_SECRET=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the walkthrough sets BILLING__AUTH__HS256_SECRET")
        .to_owned();
    let server_secret = secret.clone();
    let app = spawn_app_with(backend, move |settings| {
        settings.auth.mode = billing_server::config::AuthMode::Jwt;
        settings.auth.hs256_secret = Some(server_secret.into());
    })
    .await;
    app.load_demo_catalog().await;
    (app, secret)
}

async fn the_readme_token_walkthrough_runs_as_written(backend: Backend) {
    let script = readme_walkthrough("Calling it with a token");
    let (app, secret) = readme_token_server(backend, &script).await;
    // `cargo run -q --` is the billingd binary cargo already built.
    let script = script.replace("cargo run -q --", &billingd().display().to_string());
    let outcome = run(&app, &script).await;
    assert!(outcome.success, "the token walkthrough failed:\n{}", outcome.output);
    let output = &outcome.output;
    assert!(output.contains(r#""businessId": "acme""#), "{output}");
    assert!(
        output.contains(r#""offeringCode": "free""#),
        "acme lists its default package:\n{output}"
    );
    assert_eq!(output.matches("refused, as expected").count(), 2, "{output}");
    assert!(output.contains("Code: PermissionDenied"), "{output}");
    assert!(output.contains(r#""reason":"AUTH_TOKEN_MISSING""#), "{output}");
    assert!(output.contains(r#""status": "SERVING""#), "{output}");
    assert!(!output.contains(&secret), "the secret was printed:\n{output}");
}

async fn the_readme_json_walkthrough_runs_as_written(backend: Backend) {
    let script = readme_walkthrough("JSON over HTTP");
    let (app, _) = readme_token_server(backend, &script).await;
    // What the token walkthrough before it left: acme, provisioned.
    provision_business(&app, "acme").await;
    let script = script
        .replace("cargo run -q --", &billingd().display().to_string())
        .replace("127.0.0.1:8080", &app.http_addr.to_string());
    let outcome = run(&app, &script).await;
    assert!(outcome.success, "the JSON walkthrough failed:\n{}", outcome.output);
    let output = &outcome.output;
    assert!(output.contains(r#""businessId":"acme""#), "{output}");
    assert!(output.contains(r#""state":"SUBSCRIPTION_STATE_PURCHASED""#), "{output}");
    assert!(
        output.contains(r#""entitled":true"#),
        "acme's free package has a website:\n{output}"
    );
    assert!(output.contains(r#""purchase_state":"purchased""#), "{output}");
    assert!(output.contains(r#""success":true"#), "{output}");
    assert!(
        output.contains(r#""reason":"PERMISSION_DENIED""#) && output.contains(" HTTP 403"),
        "{output}"
    );
    assert!(
        output.contains(r#""reason":"AUTH_TOKEN_MISSING""#) && output.contains(" HTTP 401"),
        "{output}"
    );
    assert!(output.trim_end().ends_with(r#""openapi":"3.1.0""#), "{output}");
}

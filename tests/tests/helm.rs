//! The Helm chart and the image, proved without a cluster or a container
//! engine: `helm lint`, `helm template` with the default values and with the
//! example production values, every rendered manifest validated against the
//! Kubernetes schemas of a pinned version, the values schema's refusals, and
//! the Dockerfile's lint.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::process::{Command, Output};

use billing_tests::{repository_root, tool};

/// The Kubernetes version rendered manifests are validated against.
const KUBERNETES_VERSION: &str = "1.33.0";

fn chart() -> PathBuf {
    repository_root().join("helm/billing-service")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn helm(arguments: &[&str]) -> Output {
    Command::new(tool("HELM", "helm"))
        .args(arguments)
        .current_dir(chart())
        .output()
        .expect("run helm")
}

/// `helm template` with extra arguments; the rendered manifests on success.
fn render(extra: &[&str]) -> Result<String, String> {
    let mut arguments = vec!["template", "billing", ".", "--namespace", "billing"];
    arguments.extend_from_slice(extra);
    let output = helm(&arguments);
    if output.status.success() {
        Ok(String::from_utf8(output.stdout).unwrap())
    } else {
        Err(text(&output))
    }
}

fn validate(manifests: &str) -> String {
    let directory = tempfile::tempdir().unwrap();
    let file = directory.path().join("rendered.yaml");
    std::fs::write(&file, manifests).unwrap();
    let output = Command::new(tool("KUBERNETES_VALIDATE", "kubernetes-validate"))
        .args(["--strict", "-k", KUBERNETES_VERSION])
        .arg(&file)
        .output()
        .expect("run kubernetes-validate");
    assert!(output.status.success(), "{}", text(&output));
    text(&output)
}

#[test]
fn the_chart_lints_clean() {
    let output = helm(&["lint", ".", "--strict"]);
    assert!(output.status.success(), "{}", text(&output));
    let output = helm(&["lint", ".", "--strict", "-f", "ci/production-values.yaml"]);
    assert!(output.status.success(), "{}", text(&output));
}

#[test]
fn default_values_render_manifests_kubernetes_accepts() {
    let manifests = render(&[]).unwrap();
    let report = validate(&manifests);
    for kind in [
        "deployment/billing-billing-service",
        "service/billing-billing-service",
        "configmap/billing-billing-service",
        "job/billing-billing-service-migrate",
        "poddisruptionbudget/billing-billing-service",
        "serviceaccount/billing-billing-service",
    ] {
        assert!(
            report.contains(&format!("passed for resource {kind}")),
            "{kind}:\n{report}"
        );
    }
    // What a safe rollout and a hardened pod need.
    for needle in [
        "enableServiceLinks: false",
        "automountServiceAccountToken: false",
        "readOnlyRootFilesystem: true",
        "runAsUser: 65532",
        "drop: [\"ALL\"]",
        "type: RuntimeDefault",
        "appProtocol: grpc",
        "service: liveness",
        "helm.sh/hook: pre-install,pre-upgrade",
        "args: [\"migrate\"]",
    ] {
        assert!(manifests.contains(needle), "no {needle:?} in:\n{manifests}");
    }
    // Secrets only by reference.
    assert!(manifests.contains("secretKeyRef"), "{manifests}");
    assert!(
        !manifests.contains("kind: Secret\n"),
        "the chart must not carry secrets"
    );
}

/// The `billing.toml` of the rendered ConfigMap.
fn rendered_config(manifests: &str) -> String {
    let start = manifests
        .find("billing.toml: |\n")
        .expect("the ConfigMap's billing.toml")
        + "billing.toml: |\n".len();
    manifests[start..]
        .lines()
        .take_while(|line| line.starts_with("    ") || line.trim().is_empty())
        .map(|line| line.strip_prefix("    ").unwrap_or(line))
        .collect::<Vec<_>>()
        .join("\n")
}

/// billingd's own loader reads the rendered configuration, with the secrets
/// the Deployment passes as environment variables.
fn load_rendered_config(manifests: &str, secrets: &[(&str, &str)]) -> billing_server::config::Settings {
    let directory = tempfile::tempdir().unwrap();
    let file = directory.path().join("billing.toml");
    std::fs::write(&file, rendered_config(manifests)).unwrap();
    let environment = secrets
        .iter()
        .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
        .collect();
    billing_server::config::Settings::load(Some(&file), environment).unwrap_or_else(|error| {
        panic!(
            "billingd refuses the chart's configuration: {error}\n{}",
            rendered_config(manifests)
        )
    })
}

#[test]
fn billingd_reads_the_configuration_the_chart_renders() {
    let secrets = [
        ("BILLING__DATABASE__URL", "postgres://billing:secret@db/billing"),
        ("BILLING__AUTH__HS256_SECRET", "chart-test-secret-0123456789abcdef0123"),
    ];
    let settings = load_rendered_config(&render(&[]).unwrap(), &secrets);
    assert_eq!(settings.auth.mode, billing_server::config::AuthMode::Jwt);
    assert!(!settings.database.run_migrations, "the migration Job migrates");
    assert_eq!(settings.server.grpc_addr.to_string(), "0.0.0.0:50051");
    assert_eq!(settings.server.shutdown_delay_seconds.as_secs(), 5);
    assert_eq!(settings.telemetry.log_format, billing_server::config::LogFormat::Json);

    let jwks = tempfile::NamedTempFile::new().unwrap();
    let production = [
        ("BILLING__DATABASE__URL", "postgres://billing:secret@db/billing"),
        ("BILLING__AUTH__JWKS_FILE", jwks.path().to_str().unwrap()),
        ("BILLING__PROVIDERS__STRIPE__API_KEY", "sk_live_x"),
        ("BILLING__PROVIDERS__STRIPE__WEBHOOK_SECRET", "whsec_x"),
    ];
    let settings = load_rendered_config(&render(&["-f", "ci/production-values.yaml"]).unwrap(), &production);
    assert_eq!(settings.auth.audience.as_deref(), Some("billing-service"));
    assert_eq!(settings.providers.default, billing_domain::Provider::Stripe);
    assert_eq!(settings.checkout.allowed_return_hosts, ["*.platform.example"]);
}

#[test]
fn production_values_render_manifests_kubernetes_accepts() {
    let manifests = render(&["-f", "ci/production-values.yaml"]).unwrap();
    let report = validate(&manifests);
    for kind in [
        "horizontalpodautoscaler/billing-billing-service",
        "networkpolicy/billing-billing-service",
        "deployment/billing-billing-service",
    ] {
        assert!(
            report.contains(&format!("passed for resource {kind}")),
            "{kind}:\n{report}"
        );
    }
    assert!(manifests.contains("BILLING__AUTH__JWKS_FILE"), "{manifests}");
    assert!(manifests.contains("BILLING__PROVIDERS__STRIPE__API_KEY"), "{manifests}");
    assert!(!manifests.contains("BILLING__AUTH__HS256_SECRET"), "{manifests}");
    // The HPA owns the replica count.
    assert!(!manifests.contains("replicas: 3"), "{manifests}");
}

#[test]
fn metrics_and_traces_are_wired_when_asked() {
    // By default: metrics on the http port, nothing exported, no monitor.
    let manifests = render(&[]).unwrap();
    assert!(!manifests.contains("kind: ServiceMonitor"), "{manifests}");
    assert!(!manifests.contains("OTEL_EXPORTER_OTLP_ENDPOINT"), "{manifests}");
    assert!(manifests.contains("OTEL_SERVICE_NAME"), "{manifests}");

    let manifests = render(&[
        "--set",
        "serviceMonitor.enabled=true",
        "--set",
        "serviceMonitor.labels.release=prometheus",
        "--set",
        "otel.endpoint=http://otel-collector.observability:4317",
        "--set",
        "otel.resourceAttributes=deployment.environment.name=production",
    ])
    .unwrap();
    for needle in [
        "kind: ServiceMonitor",
        "path: /metrics",
        "port: http",
        "release: prometheus",
        "value: \"http://otel-collector.observability:4317\"",
        "value: \"deployment.environment.name=production\"",
    ] {
        assert!(manifests.contains(needle), "no {needle:?} in:\n{manifests}");
    }
    // The ServiceMonitor is a Prometheus Operator resource, outside the
    // Kubernetes schemas; everything else is validated as usual.
    let core: Vec<&str> = manifests
        .split("\n---")
        .filter(|document| !document.contains("kind: ServiceMonitor"))
        .collect();
    validate(&core.join("\n---"));
}

#[test]
fn values_that_cannot_work_are_refused_naming_the_field() {
    let cases: [(&[&str], &str); 7] = [
        (
            &["--set", "database.kind=sqlite", "--set", "replicaCount=3"],
            "/replicaCount",
        ),
        (
            &[
                "--set",
                "database.kind=sqlite",
                "--set",
                "replicaCount=1",
                "--set",
                "autoscaling.enabled=true",
            ],
            "/autoscaling/enabled",
        ),
        (&["--set", "config.auth.mode=none"], "/config/auth/mode"),
        (&["--set", "database.existingSecret="], "/database/existingSecret"),
        (
            &["--set", "config.database.url=postgres://user:password@db/billing"],
            "/config/database",
        ),
        (
            &["--set", "terminationGracePeriodSeconds=20"],
            "terminationGracePeriodSeconds",
        ),
        (&["--set", "otel.endpoint=otel-collector:4317"], "/otel/endpoint"),
    ];
    for (arguments, field) in cases {
        let refused = render(arguments).expect_err(&format!("{arguments:?} rendered"));
        assert!(refused.contains(field), "{arguments:?} should name {field}:\n{refused}");
    }
    // A single SQLite replica is fine, and migrates at start.
    let sqlite = render(&["--set", "database.kind=sqlite", "--set", "replicaCount=1"]).unwrap();
    assert!(sqlite.contains("BILLING__DATABASE__RUN_MIGRATIONS"), "{sqlite}");
    assert!(!sqlite.contains("kind: Job"), "{sqlite}");
}

#[test]
fn the_dockerfile_lints_clean() {
    let output = Command::new(tool("HADOLINT", "hadolint"))
        .arg(repository_root().join("Dockerfile"))
        .output()
        .expect("run hadolint");
    assert!(output.status.success(), "{}", text(&output));
    let dockerfile = std::fs::read_to_string(repository_root().join("Dockerfile")).unwrap();
    assert!(dockerfile.contains("USER 65532:65532"), "the image runs as non-root");
}

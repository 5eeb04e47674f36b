//! The harness for end-to-end tests: [`spawn_app`] starts the real server on
//! `127.0.0.1:0` over a fresh database and returns connected clients.
//!
//! Every test is written once as `async fn name(backend: Backend)` and run on
//! both databases with [`backend_tests!`].

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use billing_proto::v1::catalog_service_client::CatalogServiceClient;
use billing_proto::v1::checkout_service_client::CheckoutServiceClient;
use billing_proto::v1::event_service_client::EventServiceClient;
use billing_proto::v1::invoice_service_client::InvoiceServiceClient;
use billing_proto::v1::operations_service_client::OperationsServiceClient;
use billing_proto::v1::payment_method_service_client::PaymentMethodServiceClient;
use billing_proto::v1::subscription_service_client::SubscriptionServiceClient;
use billing_proto::v1::test_clock_service_client::TestClockServiceClient;
pub use billing_server::config::Settings;
use billing_server::startup::Application;
pub use billing_storage::Backend;
use billing_storage::testing::TestDatabase;
use tokio::task::JoinHandle;
use tokio_stream::StreamExt;
use tokio_util::sync::CancellationToken;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

pub use billing_storage::backend_tests;

pub mod page;
pub mod process;

/// The HS256 secret of servers started with [`spawn_jwt_app`].
pub const TEST_JWT_SECRET: &str = "test-only-hs256-secret-0123456789abcdef";

/// Adds `authorization: Bearer <token>` to every call, when it has a token.
#[derive(Clone, Debug, Default)]
pub struct Bearer(Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>);

impl Bearer {
    pub fn new(token: &str) -> Self {
        Bearer(Some(format!("Bearer {token}").parse().expect("a token is ASCII")))
    }
}

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            request.metadata_mut().insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// A channel whose calls carry a caller's token.
pub type AuthedChannel = InterceptedService<Channel, Bearer>;

/// Clients of every service, calling as one caller.
#[derive(Clone)]
pub struct Clients {
    channel: Channel,
    bearer: Bearer,
}

impl Clients {
    fn authed(&self) -> AuthedChannel {
        InterceptedService::new(self.channel.clone(), self.bearer.clone())
    }

    pub fn catalog(&self) -> CatalogServiceClient<AuthedChannel> {
        CatalogServiceClient::new(self.authed())
    }

    pub fn subscriptions(&self) -> SubscriptionServiceClient<AuthedChannel> {
        SubscriptionServiceClient::new(self.authed())
    }

    pub fn payment_methods(&self) -> PaymentMethodServiceClient<AuthedChannel> {
        PaymentMethodServiceClient::new(self.authed())
    }

    pub fn invoices(&self) -> InvoiceServiceClient<AuthedChannel> {
        InvoiceServiceClient::new(self.authed())
    }

    pub fn checkout(&self) -> CheckoutServiceClient<AuthedChannel> {
        CheckoutServiceClient::new(self.authed())
    }

    pub fn test_clock(&self) -> TestClockServiceClient<AuthedChannel> {
        TestClockServiceClient::new(self.authed())
    }

    pub fn events(&self) -> EventServiceClient<AuthedChannel> {
        EventServiceClient::new(self.authed())
    }

    pub fn operations(&self) -> OperationsServiceClient<AuthedChannel> {
        OperationsServiceClient::new(self.authed())
    }

    /// ListSubscriptions without a filter: the first page of what the
    /// caller's scope holds.
    pub async fn scoped_subscriptions(&self) -> Vec<billing_proto::v1::Subscription> {
        self.subscriptions()
            .list_subscriptions(billing_proto::v1::ListSubscriptionsRequest::default())
            .await
            .expect("ListSubscriptions")
            .into_inner()
            .subscriptions
    }
}

/// An HS256 token for [`TEST_JWT_SECRET`], valid for an hour, with the
/// given claims (`sub`, `role`, `directory_id`, `business_id`, …).
pub fn mint_token(claims: serde_json::Value) -> String {
    mint_token_with(TEST_JWT_SECRET, claims)
}

/// An HS256 token signed with `secret`; `exp` is added unless given.
pub fn mint_token_with(secret: &str, mut claims: serde_json::Value) -> String {
    let now = chrono::Utc::now().timestamp();
    if claims.get("exp").is_none() {
        claims["exp"] = serde_json::json!(now + 3600);
    }
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("encode a token")
}

/// The token of a platform service.
pub fn service_token(subject: &str) -> String {
    mint_token(serde_json::json!({"sub": subject, "role": "service"}))
}

/// The token of a partner directory.
pub fn directory_token(directory_id: &str) -> String {
    mint_token(
        serde_json::json!({"sub": format!("dir-{directory_id}"), "role": "directory", "directory_id": directory_id}),
    )
}

/// The token of one business.
pub fn business_token(business_id: &str) -> String {
    mint_token(serde_json::json!({"sub": format!("biz-{business_id}"), "role": "business", "business_id": business_id}))
}

/// A running server and what a test needs to talk to it.
pub struct TestApp {
    pub addr: SocketAddr,
    /// Where the HTTP side (checkout page) listens; `server.public_url`
    /// points here.
    pub http_addr: SocketAddr,
    pub channel: Channel,
    /// The token the app's own clients send: a platform service's on a
    /// server with `auth.mode = "jwt"`, none otherwise.
    bearer: Bearer,
    shutdown: CancellationToken,
    server: Option<JoinHandle<anyhow::Result<()>>>,
    // Declared last: dropped after the server was told to stop.
    database: TestDatabase,
}

/// Starts the server with default settings on a fresh database.
pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

/// Starts the server after `configure` has adjusted the settings.
pub async fn spawn_app_with(backend: Backend, configure: impl FnOnce(&mut Settings)) -> TestApp {
    // Tests talk HTTP through reqwest, which needs a TLS crypto provider.
    billing_provider_api::http::install_crypto_provider();
    let database = TestDatabase::create(backend).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let http_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let mut settings = Settings::default();
    settings.database.url = database.url().to_owned().into();
    settings.server.shutdown_grace_seconds = Duration::from_secs(5);
    settings.server.public_url = format!("http://{}", http_listener.local_addr().expect("local address"));
    configure(&mut settings);
    let jwt_secret = (settings.auth.mode == billing_server::config::AuthMode::Jwt)
        .then(|| {
            settings
                .auth
                .hs256_secret
                .as_ref()
                .map(|secret| secrecy::ExposeSecret::expose_secret(secret).to_owned())
        })
        .flatten();

    let application = Application::build(settings, listener, http_listener)
        .await
        .expect("build the application");
    let addr = application.grpc_addr();
    let http_addr = application.http_addr();
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(application.run(shutdown.clone()));

    // The listener is bound already, so connecting cannot race the server.
    let channel = Endpoint::from_shared(format!("http://{addr}"))
        .expect("endpoint")
        .connect()
        .await
        .expect("connect to the test server");
    wait_until_serving(channel.clone()).await;
    let bearer = match jwt_secret {
        Some(secret) => Bearer::new(&mint_token_with(
            &secret,
            serde_json::json!({"sub": "test-platform", "role": "service"}),
        )),
        None => Bearer::default(),
    };
    TestApp {
        addr,
        http_addr,
        channel,
        bearer,
        shutdown,
        server: Some(server),
        database,
    }
}

/// Starts the server with `auth.mode = "jwt"` and [`TEST_JWT_SECRET`]; the
/// app's own clients call as a platform service.
pub async fn spawn_jwt_app(backend: Backend, configure: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_app_with(backend, |settings| {
        settings.auth.mode = billing_server::config::AuthMode::Jwt;
        settings.auth.hs256_secret = Some(TEST_JWT_SECRET.to_owned().into());
        configure(settings);
    })
    .await
}

/// Starts the server on the manual clock at `start` (RFC 3339).
pub async fn spawn_manual_app(backend: Backend, start: &str) -> TestApp {
    let start = start.parse().expect("an RFC 3339 start time");
    spawn_app_with(backend, |settings| {
        settings.clock.mode = billing_server::config::ClockMode::Manual;
        settings.clock.start_time = Some(start);
    })
    .await
}

/// The webhook signing secret of servers started with [`spawn_stripe_app`].
pub const STRIPE_TEST_WEBHOOK_SECRET: &str = "whsec_test_secret";

/// Starts the server on the manual clock at `start` (RFC 3339), billing
/// every directory through the fake Stripe at `stripe_url` (API key
/// `sk_test_e2e`); `configure` adjusts the rest.
pub async fn spawn_stripe_app(
    backend: Backend,
    stripe_url: &str,
    start: &str,
    configure: impl FnOnce(&mut Settings),
) -> TestApp {
    let start = start.parse().expect("an RFC 3339 start time");
    spawn_app_with(backend, |settings| {
        settings.clock.mode = billing_server::config::ClockMode::Manual;
        settings.clock.start_time = Some(start);
        settings.providers.default = billing_domain::Provider::Stripe;
        settings.providers.stripe.api_key = Some("sk_test_e2e".to_owned().into());
        settings.providers.stripe.webhook_secret = Some(STRIPE_TEST_WEBHOOK_SECRET.to_owned().into());
        settings.providers.stripe.base_url = stripe_url.to_owned();
        configure(settings);
    })
    .await
}

/// Follows the health Watch stream until the server reports SERVING.
async fn wait_until_serving(channel: Channel) {
    let request = HealthCheckRequest { service: String::new() };
    let mut updates = HealthClient::new(channel)
        .watch(request)
        .await
        .expect("health watch")
        .into_inner();
    while let Some(update) = updates.next().await {
        if update.expect("health update").status == ServingStatus::Serving as i32 {
            return;
        }
    }
    panic!("the health stream ended before the server reported SERVING");
}

impl TestApp {
    /// Clients that call as the holder of `token`.
    pub fn as_caller(&self, token: &str) -> Clients {
        Clients {
            channel: self.channel.clone(),
            bearer: Bearer::new(token),
        }
    }

    /// Clients that send no token at all.
    pub fn anonymous(&self) -> Clients {
        Clients {
            channel: self.channel.clone(),
            bearer: Bearer::default(),
        }
    }

    /// The app's own clients (a platform service).
    pub fn clients(&self) -> Clients {
        Clients {
            channel: self.channel.clone(),
            bearer: self.bearer.clone(),
        }
    }

    pub fn catalog(&self) -> CatalogServiceClient<AuthedChannel> {
        self.clients().catalog()
    }

    pub fn subscriptions(&self) -> SubscriptionServiceClient<AuthedChannel> {
        self.clients().subscriptions()
    }

    pub fn payment_methods(&self) -> PaymentMethodServiceClient<AuthedChannel> {
        self.clients().payment_methods()
    }

    pub fn invoices(&self) -> InvoiceServiceClient<AuthedChannel> {
        self.clients().invoices()
    }

    pub fn checkout(&self) -> CheckoutServiceClient<AuthedChannel> {
        self.clients().checkout()
    }

    /// `http://127.0.0.1:<port>`: the HTTP side's base URL.
    pub fn http_base(&self) -> String {
        format!("http://{}", self.http_addr)
    }

    pub fn test_clock(&self) -> TestClockServiceClient<AuthedChannel> {
        self.clients().test_clock()
    }

    pub fn operations(&self) -> OperationsServiceClient<AuthedChannel> {
        self.clients().operations()
    }

    pub fn events(&self) -> EventServiceClient<AuthedChannel> {
        self.clients().events()
    }

    /// Loads the demo catalog (what `billingd load-demo` does) into this
    /// server's database.
    pub async fn load_demo_catalog(&self) {
        let store = billing_storage::Store::connect(&billing_storage::StoreOptions::new(self.database_url()))
            .await
            .expect("connect to the test database");
        let catalog = billing_app::Catalog::new(store.clone(), std::sync::Arc::new(billing_app::SystemClock));
        billing_server::demo::load(&catalog)
            .await
            .expect("load the demo catalog");
        store.close().await.ok();
    }

    /// Inbound webhook deliveries of a provider, as stored.
    pub async fn deliveries(&self, provider: &str) -> Vec<billing_storage::StoredDelivery> {
        let store = self.store().await;
        let deliveries = store.inbox().deliveries(provider).await.expect("read the inbox");
        store.close().await.ok();
        deliveries
    }

    /// Operations owed to a provider, as stored.
    pub async fn provider_operations(&self, provider: &str) -> Vec<billing_storage::StoredDelivery> {
        let store = self.store().await;
        let operations = store
            .provider_outbox()
            .deliveries(provider)
            .await
            .expect("read the provider outbox");
        store.close().await.ok();
        operations
    }

    async fn store(&self) -> billing_storage::Store {
        billing_storage::Store::connect(&billing_storage::StoreOptions::new(self.database_url()))
            .await
            .expect("connect to the test database")
    }

    /// The types of the outbox events about a business, oldest first.
    pub async fn event_types(&self, business_id: &str) -> Vec<String> {
        let store = billing_storage::Store::connect(&billing_storage::StoreOptions::new(self.database_url()))
            .await
            .expect("connect to the test database");
        let business_id = billing_domain::text::ExternalId::parse(business_id).expect("a business id");
        let events = store
            .subscriptions()
            .business_events(&business_id)
            .await
            .expect("read the outbox");
        store.close().await.ok();
        events.into_iter().map(|stored| stored.event.event_type).collect()
    }

    pub fn health(&self) -> HealthClient<Channel> {
        HealthClient::new(self.channel.clone())
    }

    /// Asserts the readiness check (`""`, no token) answers SERVING.
    pub async fn assert_serving(&self) {
        let health = self
            .health()
            .check(HealthCheckRequest { service: String::new() })
            .await
            .expect("health check")
            .into_inner();
        assert_eq!(health.status, ServingStatus::Serving as i32);
    }

    pub fn database_url(&self) -> &str {
        self.database.url()
    }

    pub fn backend(&self) -> Backend {
        self.database.backend()
    }

    /// Takes the database away (Postgres only), as an outage would.
    pub async fn lose_database(&self) {
        self.database.drop_now().await;
    }

    /// Postgres goes away for this server (connections ended, new ones
    /// refused) with its data kept, until [`Self::restore_database`].
    pub async fn interrupt_database(&self) {
        self.database.interrupt().await;
    }

    /// A count straight from the database (`SELECT COUNT(*) AS n …`).
    pub async fn count_in_database(&self, sql: &str) -> i64 {
        self.database.count(sql).await
    }

    pub async fn restore_database(&self) {
        self.database.restore().await;
    }

    /// Asks the server to stop and waits until it has.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        match self.server.take() {
            Some(server) => server.await?,
            None => Ok(()),
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// The `ErrorInfo.reason` of a status, or "" if it has none.
pub fn reason(status: &tonic::Status) -> String {
    use tonic_types::StatusExt;
    status
        .get_error_details()
        .error_info()
        .map(|info| info.reason.clone())
        .unwrap_or_default()
}

/// The fields named by a status's `BadRequest` violations.
pub fn violated_fields(status: &tonic::Status) -> Vec<String> {
    use tonic_types::StatusExt;
    status
        .get_error_details()
        .bad_request()
        .map(|bad_request| bad_request.field_violations.iter().map(|v| v.field.clone()).collect())
        .unwrap_or_default()
}

/// The grpcurl binary the test command installed (`GRPCURL`), else the one
/// under `.tools/`, else one on PATH. Missing grpcurl fails the test.
pub fn grpcurl() -> PathBuf {
    tool("GRPCURL", "grpcurl")
}

/// A tool the test command installs (grpcurl, helm, kubernetes-validate,
/// hadolint): the path in `env_var`, else `.tools/bin/<name>`, else `name`
/// on PATH. A missing tool fails the test; it is never skipped.
pub fn tool(env_var: &str, name: &str) -> PathBuf {
    if let Some(path) = std::env::var_os(env_var) {
        return PathBuf::from(path);
    }
    let workspace_tool = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../.tools/bin")
        .join(name);
    if workspace_tool.exists() {
        return workspace_tool;
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|directory| directory.join(name))
        .find(|candidate| candidate.exists());
    on_path.unwrap_or_else(|| panic!("{name} not found: run scripts/test, which installs it into .tools/"))
}

/// The `billingd` binary cargo built beside the test binaries (the server
/// crate's own integration tests make `cargo test --workspace` build it).
pub fn billingd() -> PathBuf {
    let test_binary = std::env::current_exe().expect("the test binary's path");
    let profile_directory = test_binary
        .parent()
        .and_then(std::path::Path::parent)
        .expect("target/<profile>/deps");
    let binary = profile_directory.join("billingd");
    assert!(
        binary.exists(),
        "{} is missing: run the tests with `cargo test --workspace` (scripts/test)",
        binary.display()
    );
    binary
}

/// The repository root, for tests that read the README.
pub fn repository_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// An RFC 3339 time as a protobuf timestamp.
pub fn timestamp(text: &str) -> prost_types::Timestamp {
    let time: chrono::DateTime<chrono::Utc> = text.parse().expect("an RFC 3339 time");
    prost_types::Timestamp {
        seconds: time.timestamp(),
        nanos: i32::try_from(time.timestamp_subsec_nanos()).expect("nanoseconds fit"),
    }
}

/// Asserts a status's code and `ErrorInfo.reason`.
pub fn assert_status(status: &tonic::Status, code: tonic::Code, expected_reason: &str) {
    assert_eq!(status.code(), code, "{status:?}");
    assert_eq!(reason(status), expected_reason, "{status:?}");
}

/// GetSubscription, expecting it to exist.
pub async fn get_subscription(app: &TestApp, id: &str) -> billing_proto::v1::Subscription {
    app.subscriptions()
        .get_subscription(billing_proto::v1::GetSubscriptionRequest {
            subscription_id: id.into(),
        })
        .await
        .expect("GetSubscription")
        .into_inner()
        .subscription
        .expect("a subscription")
}

/// ProvisionBusiness in directory `demo`, buyer `owner`.
pub async fn provision_business(app: &TestApp, business_id: &str) {
    app.subscriptions()
        .provision_business(billing_proto::v1::ProvisionBusinessRequest {
            request_id: format!("provision-{business_id}"),
            business_id: business_id.into(),
            directory_id: "demo".into(),
            buyer_id: "owner".into(),
        })
        .await
        .expect("ProvisionBusiness");
}

/// AttachPaymentMethod with a test token (`pm_card_visa`, …).
pub async fn attach_card(app: &TestApp, business_id: &str, token: &str) {
    app.payment_methods()
        .attach_payment_method(billing_proto::v1::AttachPaymentMethodRequest {
            request_id: format!("attach-{business_id}-{token}"),
            business_id: business_id.into(),
            token: token.into(),
        })
        .await
        .expect("AttachPaymentMethod");
}

/// A provider adapter's test fixture (`stripe`, `maxio`), as text.
pub fn provider_fixture(provider: &str, name: &str) -> String {
    let path = repository_root().join(format!("crates/provider-{provider}/tests/fixtures/{name}"));
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("read {}: {error}", path.display()))
}

/// A CreateSubscription of `offering_code` in USD for `business_id`, bought
/// by "owner", with no request id: what most tests buy.
pub fn purchase_request(business_id: &str, offering_code: &str) -> billing_proto::v1::CreateSubscriptionRequest {
    use billing_proto::v1 as pb;
    pb::CreateSubscriptionRequest {
        business_id: business_id.into(),
        buyer_id: "owner".into(),
        offering: Some(pb::create_subscription_request::Offering::OfferingCode(
            offering_code.into(),
        )),
        currency_code: "USD".into(),
        ..Default::default()
    }
}

/// [`purchase_request`], keyed by the business and offering.
pub async fn buy_offering(
    app: &TestApp,
    business_id: &str,
    offering_code: &str,
) -> Result<billing_proto::v1::CreateSubscriptionResponse, tonic::Status> {
    app.subscriptions()
        .create_subscription(billing_proto::v1::CreateSubscriptionRequest {
            request_id: format!("buy-{business_id}-{offering_code}"),
            ..purchase_request(business_id, offering_code)
        })
        .await
        .map(tonic::Response::into_inner)
}

/// The invoices of a business, oldest first.
pub async fn business_invoices(app: &TestApp, business_id: &str) -> Vec<billing_proto::v1::Invoice> {
    app.invoices()
        .list_invoices(billing_proto::v1::ListInvoicesRequest {
            business_id: business_id.into(),
            ..Default::default()
        })
        .await
        .expect("ListInvoices")
        .into_inner()
        .invoices
}

/// AdvanceClock to an RFC 3339 time; every job on the way must succeed.
pub async fn advance_clock(app: &TestApp, to: &str) -> billing_proto::v1::AdvanceClockResponse {
    let advanced = app
        .test_clock()
        .advance_clock(billing_proto::v1::AdvanceClockRequest {
            to_time: Some(timestamp(to)),
        })
        .await
        .expect("AdvanceClock")
        .into_inner();
    assert_eq!(advanced.jobs_failed, 0, "a job failed while advancing to {to}");
    advanced
}

/// Stripe's customer lookup, customer creation and card attachment
/// (`pm_card_visa`), answered from the adapter's fixtures.
pub async fn mount_stripe_customer_and_card(stripe: &wiremock::MockServer) {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, ResponseTemplate};
    Mock::given(method("GET"))
        .and(path("/v1/customers/search"))
        .respond_with(ResponseTemplate::new(200).set_body_string(r#"{"object": "search_result", "data": []}"#))
        .mount(stripe)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/customers"))
        .respond_with(ResponseTemplate::new(200).set_body_string(provider_fixture("stripe", "customer.json")))
        .mount(stripe)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/payment_methods/pm_card_visa/attach"))
        .respond_with(
            ResponseTemplate::new(200).set_body_string(provider_fixture("stripe", "payment_method_attached.json")),
        )
        .mount(stripe)
        .await;
}

/// Stripe's payment-intent search, finding no earlier attempt.
pub async fn mount_stripe_no_earlier_attempt(stripe: &wiremock::MockServer) {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, ResponseTemplate};
    Mock::given(method("GET"))
        .and(path("/v1/payment_intents/search"))
        .respond_with(ResponseTemplate::new(200).set_body_string(r#"{"object": "search_result", "data": []}"#))
        .mount(stripe)
        .await;
}

/// The `Idempotency-Key` of every payment intent Stripe was sent, in order.
pub async fn stripe_charge_keys(stripe: &wiremock::MockServer) -> Vec<String> {
    stripe
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|request| request.method.as_str() == "POST" && request.url.path() == "/v1/payment_intents")
        .map(|request| {
            request.headers["Idempotency-Key"]
                .to_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect()
}

/// The open end of a request body.
pub type BodySender = tokio::sync::mpsc::Sender<Result<http_body::Frame<bytes::Bytes>, std::convert::Infallible>>;
/// The server's answer to a held call (its status, `OK` when the headers
/// carry none), and how long it took.
pub type Answer = JoinHandle<(tonic::Status, Duration)>;

/// A unary call whose body the test holds open: the server has its headers
/// and waits for its message. Returns the body's sender (send an encoded
/// frame, or drop it to end the body) and the task awaiting the answer.
pub fn held_open_call(channel: &Channel, path: &str) -> (BodySender, Answer) {
    let (sender, receiver) = tokio::sync::mpsc::channel(1);
    let body = http_body_util::StreamBody::new(tokio_stream::wrappers::ReceiverStream::new(receiver));
    let request = http::Request::builder()
        .method("POST")
        .uri(format!("http://billing{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(tonic::body::Body::new(body))
        .expect("a request");
    let channel = channel.clone();
    let answer = tokio::spawn(async move {
        let started = std::time::Instant::now();
        let response = tower::ServiceExt::oneshot(channel, request).await.expect("an answer");
        let status = tonic::Status::from_header_map(response.headers()).unwrap_or_else(|| tonic::Status::ok(""));
        (status, started.elapsed())
    });
    (sender, answer)
}

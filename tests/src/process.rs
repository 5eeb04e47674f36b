//! The real `billingd` binary as a child process, for what only a process
//! shows: signals, exit codes, its log, and global telemetry set up once.

use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout};
use tokio::task::JoinHandle;
use tonic::transport::{Channel, Endpoint};

use crate::billingd;

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("a free port")
        .local_addr()
        .expect("its address")
        .port()
}

/// Runs `billingd load-demo` on `database_url` (migrating it first).
pub async fn load_demo(database_url: &str) {
    let loaded = tokio::process::Command::new(billingd())
        .arg("load-demo")
        .env_clear()
        .env("BILLING__DATABASE__URL", database_url)
        .output()
        .await
        .expect("billingd load-demo runs");
    assert!(loaded.status.success(), "{loaded:?}");
}

/// ProvisionBusiness in directory `demo` over `channel`.
pub async fn provision_over(channel: &Channel, business_id: &str) {
    billing_proto::v1::subscription_service_client::SubscriptionServiceClient::new(channel.clone())
        .provision_business(billing_proto::v1::ProvisionBusinessRequest {
            request_id: format!("provision-{business_id}"),
            business_id: business_id.into(),
            directory_id: "demo".into(),
            buyer_id: "owner".into(),
        })
        .await
        .expect("ProvisionBusiness");
}

/// A running `billingd serve`, its log captured.
pub struct Billingd {
    child: Child,
    pub grpc_port: u16,
    pub http_port: u16,
    log: JoinHandle<Vec<String>>,
    _scratch: tempfile::TempDir,
}

impl Billingd {
    /// Starts `billingd serve` on `database_url` with JSON logs, free ports
    /// and nothing of this process's environment but `env`, and returns once
    /// its log says it serves.
    pub async fn start(database_url: &str, env: &[(&str, &str)]) -> Billingd {
        // A port found free may be taken by another test before billingd
        // binds it: then it starts again on others.
        for _ in 0..5 {
            let (grpc_port, http_port) = (free_port(), free_port());
            let scratch = tempfile::tempdir().expect("a scratch directory");
            let mut command = tokio::process::Command::new(billingd());
            command
                .arg("serve")
                .current_dir(scratch.path())
                .env_clear()
                .env("BILLING__DATABASE__URL", database_url)
                .env("BILLING__SERVER__GRPC_ADDR", format!("127.0.0.1:{grpc_port}"))
                .env("BILLING__SERVER__HTTP_ADDR", format!("127.0.0.1:{http_port}"))
                .env("BILLING__TELEMETRY__LOG_FORMAT", "json")
                .envs(env.iter().copied())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .kill_on_drop(true);
            let mut child = command.spawn().expect("billingd starts");
            let mut log = BufReader::new(child.stdout.take().expect("its stdout")).lines();
            let early = match wait_for_serving(&mut log).await {
                Ok(early) => early,
                Err(early) if early.iter().any(|line| line.contains("Address already in use")) => continue,
                Err(early) => panic!("billingd exited before serving:\n{}", early.join("\n")),
            };
            let log = tokio::spawn(async move {
                let mut lines = early;
                while let Ok(Some(line)) = log.next_line().await {
                    lines.push(line);
                }
                lines
            });
            return Billingd {
                child,
                grpc_port,
                http_port,
                log,
                _scratch: scratch,
            };
        }
        panic!("billingd found its ports taken five times in a row");
    }

    pub async fn channel(&self) -> Channel {
        Endpoint::from_shared(format!("http://127.0.0.1:{}", self.grpc_port))
            .expect("an endpoint")
            .connect()
            .await
            .expect("billingd accepts connections")
    }

    pub fn http_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.http_port)
    }

    /// Sends SIGTERM, as Kubernetes does to stop a pod.
    pub fn terminate(&self) {
        let pid = self.child.id().expect("still running").to_string();
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill runs");
        assert!(sent.success(), "SIGTERM could not be sent");
    }

    /// Kills the process at once (SIGKILL): no shutdown, no flush, as a
    /// crash or an OOM kill would.
    pub async fn kill(mut self) {
        self.child.kill().await.expect("billingd is killed");
    }

    /// Waits for the exit (at most `within`), then returns its status and
    /// every log line.
    pub async fn wait(mut self, within: Duration) -> (ExitStatus, Vec<String>) {
        let exit = tokio::time::timeout(within, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("billingd did not exit within {within:?}"))
            .expect("its exit status");
        let log = self.log.await.expect("the log reader");
        (exit, log)
    }
}

/// Reads the log until `billingd serving`; returns the lines before it, as
/// an error when the process ended first.
async fn wait_for_serving(log: &mut Lines<BufReader<ChildStdout>>) -> Result<Vec<String>, Vec<String>> {
    let mut early = Vec::new();
    loop {
        match log.next_line().await.expect("its log") {
            Some(line) if line.contains("billingd serving") => return Ok(early),
            Some(line) => early.push(line),
            None => return Err(early),
        }
    }
}

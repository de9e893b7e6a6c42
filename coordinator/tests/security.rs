//! Authentication and TLS: a coordinator with a token refuses calls without it
//! (UNAUTHENTICATED, the health service aside); one with TLS is reached only over https with
//! the CA that signed its certificate; a worker with wrong credentials exits at once.

mod common;

use std::time::{Duration, Instant};

use common::tls::{pki, start_secure};
use common::*;
use coordinator::client::{connect_with, ClientOptions, Token};
use coordinator::testkit::FakeWorker;
use proto::v1 as pb;
use tonic::Code;

async fn status_code(options: &ClientOptions, url: &str) -> Result<(), Code> {
    let mut client = connect_with(url, options).await.expect("connect");
    client
        .status(pb::StatusRequest { sweep: None })
        .await
        .map(|_| ())
        .map_err(|status| {
            assert!(
                status.code() != Code::Unauthenticated || status.message().contains("token"),
                "{}",
                status.message()
            );
            status.code()
        })
}

#[tokio::test]
async fn every_call_needs_the_token_but_the_health_check() {
    let s = start_secure(false).await;
    let url = s.url();

    // No token, a wrong token: refused, whatever the call.
    let none = ClientOptions::none();
    let wrong = ClientOptions::none().with_token(Token::new("not-the-token", "test").unwrap());
    for options in [&none, &wrong] {
        assert_eq!(status_code(options, &url).await, Err(Code::Unauthenticated));
        let mut client = connect_with(&url, options).await.unwrap();
        let err = submit_with(&mut client, &small_sweep("nope", 1, 1))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated);
        let err = FakeWorker::register_with(&url, "w", options)
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated);
    }
    // Another scheme is refused too.
    let mut raw = connect_with(&url, &none).await.unwrap();
    let mut request = tonic::Request::new(pb::ListSweepsRequest {});
    request
        .metadata_mut()
        .insert("authorization", "Basic dXNlcjpwYXNz".parse().unwrap());
    assert_eq!(
        raw.list_sweeps(request).await.unwrap_err().code(),
        Code::Unauthenticated
    );

    // The right token works, for operators and workers alike; nothing refused was stored.
    assert_eq!(status_code(&s.options(), &url).await, Ok(()));
    let mut client = connect_with(&url, &s.options()).await.unwrap();
    let sweeps = client
        .list_sweeps(pb::ListSweepsRequest {})
        .await
        .unwrap()
        .into_inner()
        .sweeps;
    assert!(sweeps.is_empty());
    submit_with(&mut client, &small_sweep("ok", 1, 1))
        .await
        .unwrap();
    let mut worker = FakeWorker::register_with(&url, "w", &s.options())
        .await
        .unwrap();
    assert_eq!(worker.drain().await.unwrap(), 1);

    // Probes need no token.
    assert_eq!(health(&url, None).await, Ok(()));
    s.t.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn tls_works_with_the_right_ca_only_and_the_server_survives_the_rest() {
    let s = start_secure(true).await;
    let url = s.url();
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");

    // The right CA and token.
    assert_eq!(status_code(&s.options(), &url).await, Ok(()));
    // The right CA, a wrong token: through TLS, then refused.
    let wrong_token = ClientOptions::none()
        .with_token(Token::generate())
        .with_tls_ca(s.pki.as_ref().unwrap().ca_pem.as_bytes());
    assert_eq!(
        status_code(&wrong_token, &url).await,
        Err(Code::Unauthenticated)
    );
    // Another CA: the handshake fails.
    let other = pki();
    let wrong_ca = ClientOptions::none()
        .with_token(s.token.clone())
        .with_tls_ca(other.ca_pem.as_bytes());
    let err = connect_with(&url, &wrong_ca).await.unwrap_err().to_string();
    assert!(err.contains("certificate"), "{err}");
    // https without a CA: refused before connecting; a CA with http: refused too.
    let no_ca = ClientOptions::none().with_token(s.token.clone());
    let err = connect_with(&url, &no_ca).await.unwrap_err().to_string();
    assert!(err.contains("--tls-ca"), "{err}");
    let plain_url = url.replacen("https://", "http://", 1);
    let err = connect_with(&plain_url, &s.options())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("not https://"), "{err}");
    // Plain HTTP/2 to the TLS port: no answer.
    let plain = tokio::time::timeout(Duration::from_secs(10), async {
        match connect_with(&plain_url, &no_ca).await {
            Err(_) => Err(Code::Unavailable),
            Ok(mut client) => client
                .status(pb::StatusRequest { sweep: None })
                .await
                .map(|_| ())
                .map_err(|e| e.code()),
        }
    })
    .await;
    assert!(!matches!(plain, Ok(Ok(()))), "{plain:?}");

    // The server still serves: a worker over TLS runs a task end to end.
    let mut client = connect_with(&url, &s.options()).await.unwrap();
    submit_with(&mut client, &small_sweep("tls", 2, 1))
        .await
        .unwrap();
    let mut worker = FakeWorker::register_with(&url, "w", &s.options())
        .await
        .unwrap();
    assert_eq!(worker.drain().await.unwrap(), 1);
    let status = client
        .status(pb::StatusRequest {
            sweep: Some("tls".into()),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status.sweeps[0].done, 1);

    // Health over TLS, without a token.
    assert_eq!(
        health(&url, Some(s.pki.as_ref().unwrap().ca_pem.as_bytes())).await,
        Ok(())
    );
    s.t.server.shutdown().await.unwrap();
}

/// A sweep of one task that trains in a fraction of a second.
fn tiny_sweep(name: &str) -> String {
    format!(
        "name: {name}\ndata:\n  samples: 100\nmodel:\n  shape: [4, 8, 8, 2]\ntrain:\n  max_epochs: 2\npruning:\n  levels: 1\n  target: 60\nseeds: 1\n"
    )
}

fn worker_config(url: &str, auth: ClientOptions) -> worker::client::Config {
    let mut config = worker::client::Config::new(url);
    config.parallel = 1;
    config.threads = 1;
    config.name = "test-worker".into();
    config.exit_when_idle = true;
    config.auth = auth;
    config
}

#[tokio::test]
async fn a_worker_with_credentials_trains_over_tls() {
    let s = start_secure(true).await;
    let mut client = connect_with(&s.url(), &s.options()).await.unwrap();
    submit_with(&mut client, &tiny_sweep("real")).await.unwrap();
    let summary = tokio::time::timeout(
        Duration::from_secs(120),
        worker::client::run(worker_config(&s.url(), s.options()), std::future::pending()),
    )
    .await
    .expect("the worker finishes")
    .expect("the worker succeeds");
    assert_eq!((summary.completed, summary.levels_reported), (1, 2));
    s.t.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_worker_with_wrong_credentials_exits_at_once() {
    let s = start_secure(true).await;
    let ca = s.pki.as_ref().unwrap().ca_pem.clone();

    let started = Instant::now();
    let wrong_token = ClientOptions::none()
        .with_token(Token::generate())
        .with_tls_ca(ca.as_bytes());
    let err = worker::client::run(worker_config(&s.url(), wrong_token), std::future::pending())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("UNAUTHENTICATED") && err.contains("--token-file"),
        "{err}"
    );

    let no_token = ClientOptions::none().with_tls_ca(ca.as_bytes());
    let err = worker::client::run(worker_config(&s.url(), no_token), std::future::pending())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("UNAUTHENTICATED"), "{err}");

    let wrong_ca = ClientOptions::none()
        .with_token(s.token.clone())
        .with_tls_ca(pki().ca_pem.as_bytes());
    let err = worker::client::run(worker_config(&s.url(), wrong_ca), std::future::pending())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("certificate") && err.contains("--tls-ca"),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "refused workers took {:?} to stop",
        started.elapsed()
    );
    s.t.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_bad_certificate_or_key_is_an_error_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let good = pki();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = config(dir.path()).with_tls(good.cert_pem.clone(), b"not a key".to_vec());
    let err = coordinator::RunningServer::start(config, listener)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("tls"), "{err}");
}

async fn submit_with(
    client: &mut coordinator::client::Client,
    yaml: &str,
) -> Result<pb::SubmitSweepResponse, tonic::Status> {
    client
        .submit_sweep(pb::SubmitSweepRequest {
            name: String::new(),
            yaml: yaml.to_string(),
            source: "test.yaml".to_string(),
            priority: None,
        })
        .await
        .map(|r| r.into_inner())
}

async fn health(url: &str, ca: Option<&[u8]>) -> Result<(), String> {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::{health_client::HealthClient, HealthCheckRequest};
    let options = match ca {
        Some(ca) => ClientOptions::none().with_tls_ca(ca),
        None => ClientOptions::none(),
    };
    let channel = options
        .endpoint(url)
        .map_err(|e| e.to_string())?
        .connect()
        .await
        .map_err(|e| e.to_string())?;
    let answer = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: "lottery.v1.Coordinator".into(),
        })
        .await
        .map_err(|e| e.to_string())?
        .into_inner();
    (answer.status() == ServingStatus::Serving)
        .then_some(())
        .ok_or_else(|| format!("{:?}", answer.status()))
}

/// Runs the `coordinator` binary with `env` (and no credentials from the test's environment).
async fn cli(args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_coordinator"));
    command
        .args(args)
        .env_remove(proto::auth::TOKEN_ENV)
        .env_remove(proto::auth::TOKEN_FILE_ENV)
        .env_remove(proto::auth::TLS_CA_ENV);
    for (key, value) in env {
        command.env(key, value);
    }
    let out = tokio::time::timeout(Duration::from_secs(60), command.output())
        .await
        .expect("the command ends")
        .expect("run coordinator");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn the_cli_takes_the_token_from_a_file_or_the_environment() {
    const SECRET: &str = "cli-test-token-5f2c9a";
    let certs = pki();
    let (cert, key) = (certs.cert_pem.clone(), certs.key_pem.clone());
    let t = start_with(move |dir| {
        config(dir)
            .with_token(Token::new(SECRET, "test").unwrap())
            .with_tls(cert, key)
    })
    .await;
    let url = t.url();
    let dir = t.dir.path();
    let token_file = dir.join("token");
    std::fs::write(&token_file, format!("{SECRET}\n")).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let token_file = token_file.display().to_string();
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, &certs.ca_pem).unwrap();
    let ca = ca.display().to_string();
    let sweep = dir.join("cli.yaml");
    std::fs::write(&sweep, small_sweep("cli", 1, 1)).unwrap();
    let sweep = sweep.display().to_string();

    // Without a token: refused, saying how to give one, never echoing anything secret.
    let (ok, _, err) = cli(
        &["submit", &sweep, "--coordinator", &url, "--tls-ca", &ca],
        &[],
    )
    .await;
    assert!(!ok);
    assert!(
        err.contains("Unauthenticated") && err.contains("--token-file"),
        "{err}"
    );
    // A token file; the token in the environment; the token file and CA from the environment.
    let (ok, out, err) = cli(
        &[
            "submit",
            &sweep,
            "--coordinator",
            &url,
            "--tls-ca",
            &ca,
            "--token-file",
            &token_file,
        ],
        &[],
    )
    .await;
    assert!(ok, "{err}");
    assert!(out.contains("1 task(s) added"), "{out}");
    assert!(!err.contains("warning"), "{err}");
    let (ok, out, err) = cli(
        &["status", "cli", "--coordinator", &url, "--tls-ca", &ca],
        &[(proto::auth::TOKEN_ENV, SECRET)],
    )
    .await;
    assert!(ok, "{err}");
    assert!(out.contains("cli"), "{out}");
    let (ok, _, err) = cli(
        &["results", "cli", "--coordinator", &url],
        &[
            (proto::auth::TOKEN_FILE_ENV, &token_file),
            (proto::auth::TLS_CA_ENV, &ca),
        ],
    )
    .await;
    assert!(ok, "{err}");
    // An empty token is an error, not "no token".
    let (ok, _, err) = cli(
        &["status", "--coordinator", &url, "--tls-ca", &ca],
        &[(proto::auth::TOKEN_ENV, "")],
    )
    .await;
    assert!(!ok && err.contains("empty"), "{err}");
    // No flag takes the token itself.
    let (ok, _, _) = cli(&["status", "--coordinator", &url, "--token", SECRET], &[]).await;
    assert!(!ok);
    t.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn serve_refuses_a_public_address_without_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db").display().to_string();
    let (ok, _, err) = cli(&["serve", "--listen", "0.0.0.0:0", "--db", &db], &[]).await;
    assert!(!ok);
    assert!(
        err.contains("without a token") && err.contains("--allow-insecure-public"),
        "{err}"
    );
    let (ok, _, err) = cli(
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--db",
            &db,
            "--tls-cert",
            &db,
        ],
        &[],
    )
    .await;
    assert!(!ok && err.contains("--tls-key"), "{err}");
    let missing = dir.path().join("missing-token").display().to_string();
    let (ok, _, err) = cli(
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--db",
            &db,
            "--token-file",
            &missing,
        ],
        &[],
    )
    .await;
    assert!(!ok && err.contains("cannot read the token file"), "{err}");
}

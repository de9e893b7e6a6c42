//! Results people can look at, end to end on synthetic workers: `results --by`, `plot`,
//! `export` (read back and compared), `report`, the live page of `serve --http`, and the page
//! in a real headless browser (Debian's chromium).

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use analysis::export::{self, Table};
use common::*;
use serde_json::Value;

const SWEEP: &str =
    "name: looked\nmodel:\n  base: [4, 8, 8, 2]\n  extension_levels: [0, 2, 4]\nseeds: 2\n";

async fn coordinator(args: &[&str]) -> (bool, Vec<u8>, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_coordinator"))
        .args(args)
        .output()
        .await
        .expect("run coordinator");
    (
        out.status.success(),
        out.stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn ok(args: &[&str]) -> Vec<u8> {
    let (ok, out, err) = coordinator(args).await;
    assert!(ok, "coordinator {args:?} failed: {err}");
    out
}

fn text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).expect("utf-8 output")
}

/// A coordinator with the sweep submitted and finished by a synthetic worker.
async fn finished() -> TestServer {
    let t = start().await;
    let mut client = t.client().await;
    submit(&mut client, SWEEP).await.expect("submit");
    let done = t.worker("w").await.drain().await.expect("drain");
    assert_eq!(done, 6);
    t
}

/// A task id and a stored level of the sweep (the first task's last level).
async fn some_ticket(db: &str) -> (String, usize) {
    let out = text(ok(&["export", "looked", "--format", "json", "--db", db]).await);
    let rows: Vec<Value> = serde_json::from_str(&out).unwrap();
    let last = rows
        .iter()
        .rfind(|r| r["last_level"] == true)
        .expect("a last level");
    (
        last["task_id"].as_str().unwrap().to_string(),
        last["level"].as_u64().unwrap() as usize,
    )
}

/// Checks that `xml` is well-formed enough: every tag closed in order, attributes quoted.
fn assert_well_formed_xml(xml: &str) {
    let mut stack: Vec<String> = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find('<') {
        let end = rest[start..].find('>').expect("unclosed tag") + start;
        let tag = &rest[start + 1..end];
        rest = &rest[end + 1..];
        if tag.starts_with('?') || tag.starts_with('!') {
            continue;
        }
        assert_eq!(
            tag.matches('"').count() % 2,
            0,
            "unbalanced quotes in <{tag}>"
        );
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(
                stack.pop().as_deref(),
                Some(name.trim()),
                "mismatched </{name}>"
            );
        } else if !tag.ends_with('/') {
            stack.push(tag.split_whitespace().next().unwrap_or("").to_string());
        }
    }
    assert!(stack.is_empty(), "unclosed: {stack:?}");
}

fn read_back_csv(columns: &[export::Column], bytes: &[u8]) -> Table {
    export::read_csv(columns, bytes).expect("csv reads back")
}

#[tokio::test]
async fn results_by_axis_plots_exports_and_report() {
    let t = finished().await;
    let url = t.url();
    let db = t.config.db_path.display().to_string();
    let dir = t.dir.path().to_path_buf();

    // results --by: the same from the database and the coordinator, with intervals.
    let by_db = text(
        ok(&[
            "results", "looked", "--by", "ext", "--format", "json", "--db", &db,
        ])
        .await,
    );
    let by_rpc = text(
        ok(&[
            "results",
            "looked",
            "--by",
            "extension_level",
            "--format",
            "json",
            "--coordinator",
            &url,
        ])
        .await,
    );
    assert_eq!(by_db, by_rpc);
    let groups: Vec<Value> = serde_json::from_str(&by_db).unwrap();
    assert_eq!(groups.len(), 3);
    for g in &groups {
        assert_eq!(g["tasks_done"], 2);
        let ci = g["frac_split_ci"].as_array().unwrap();
        let (lo, hi) = (ci[0].as_f64().unwrap(), ci[1].as_f64().unwrap());
        let frac = g["frac_split"].as_f64().unwrap();
        assert!(lo <= frac && frac <= hi, "{g}");
    }
    let table = text(ok(&["results", "looked", "--by", "shape,rate", "--db", &db]).await);
    assert!(
        table.starts_with("shape") && table.contains("95% ci"),
        "{table}"
    );
    let plain = text(ok(&["results", "looked", "--format", "json", "--db", &db]).await);
    let rows: Vec<Value> = serde_json::from_str(&plain).unwrap();
    assert!(rows
        .iter()
        .all(|r| r["frac_split_ci"].is_array() && r["frac_degraded_ci"].is_array()));
    let (bad, _, err) = coordinator(&["results", "looked", "--by", "colour", "--db", &db]).await;
    assert!(!bad && err.contains("unknown axis"), "{err}");

    // Exports: the same rows from both sources; CSV, JSON and Parquet read back equal.
    let csv_db = ok(&["export", "looked", "--format", "csv", "--db", &db]).await;
    let csv_rpc = ok(&["export", "looked", "--format", "csv", "--coordinator", &url]).await;
    assert_eq!(csv_db, csv_rpc);
    let json = ok(&[
        "export",
        "looked",
        "--format",
        "json",
        "--coordinator",
        &url,
    ])
    .await;
    let parquet = dir.join("looked.parquet");
    ok(&[
        "export",
        "looked",
        "--format",
        "parquet",
        "--out",
        parquet.to_str().unwrap(),
        "--db",
        &db,
    ])
    .await;
    let expected = {
        let store = read_only(&t.config);
        let data = store
            .run_blocking(|c| coordinator::sweep_data::load(c, "looked"))
            .unwrap();
        export::long_table("looked", &data.tasks)
    };
    assert!(expected.rows.len() >= 6, "one row per task and level");
    assert_eq!(read_back_csv(&expected.columns, &csv_db), expected);
    assert_eq!(
        export::read_json(&expected.columns, json.as_slice()).unwrap(),
        expected
    );
    let back =
        export::read_parquet(&expected.columns, std::fs::File::open(&parquet).unwrap()).unwrap();
    assert_eq!(back, expected);
    let (bad, _, err) =
        coordinator(&["export", "looked", "--format", "parquet", "--db", &db]).await;
    assert!(!bad && err.contains("--out"), "{err}");

    // A ticket's graph: GraphML well-formed, DOT with one edge line per active weight.
    let (task, level) = some_ticket(&db).await;
    let graphml = text(
        ok(&[
            "export",
            "looked",
            "--format",
            "graphml",
            "--ticket",
            &task,
            "--level",
            &level.to_string(),
            "--coordinator",
            &url,
        ])
        .await,
    );
    assert!(
        graphml.starts_with("<?xml") && graphml.contains("<graphml"),
        "{graphml}"
    );
    assert_well_formed_xml(&graphml);
    let dot = text(
        ok(&[
            "export",
            "looked",
            "--format",
            "dot",
            "--ticket",
            &task[..8],
            "--level",
            &level.to_string(),
            "--db",
            &db,
        ])
        .await,
    );
    assert!(
        dot.starts_with("digraph ticket {") && dot.trim_end().ends_with('}'),
        "{dot}"
    );
    assert_eq!(dot.matches('{').count(), dot.matches('}').count());
    assert_eq!(
        dot.matches(" -> ").count(),
        graphml.matches("<edge ").count(),
        "the same active weights"
    );

    // Figures: SVG with the expected labels, PNG decodable.
    let figures = dir.join("figures");
    let listed = text(
        ok(&[
            "plot",
            "looked",
            "--out",
            figures.to_str().unwrap(),
            "--coordinator",
            &url,
        ])
        .await,
    );
    for (file, label) in [
        ("fraction.svg", "fraction of networks"),
        ("outcomes.svg", "fraction of finished seeds"),
        ("active.svg", "active weights at the first split"),
        ("loss.svg", "held-out loss"),
        ("levels.svg", "pruning level"),
    ] {
        let svg = std::fs::read_to_string(figures.join(file)).expect(file);
        assert!(
            svg.starts_with("<svg") && svg.contains(label),
            "{file} lacks {label:?}"
        );
        assert!(listed.contains(file));
        assert_well_formed_xml(&svg);
        let png = std::fs::read(figures.join(file.replace(".svg", ".png"))).unwrap();
        let decoder = png::Decoder::new(std::io::Cursor::new(png));
        let reader = decoder.read_info().expect("a PNG");
        assert_eq!(reader.info().width, 1600);
    }
    let fraction = std::fs::read_to_string(figures.join("fraction.svg")).unwrap();
    assert!(fraction.contains("model extension level") && fraction.contains("95% Wilson"));
    ok(&[
        "plot",
        "looked",
        "--out",
        figures.to_str().unwrap(),
        "--ticket",
        &task,
        "--level",
        &level.to_string(),
        "--no-png",
        "--db",
        &db,
    ])
    .await;
    let ticket_svg =
        std::fs::read_to_string(figures.join(format!("ticket_{task}_level{level}.svg"))).unwrap();
    for label in ["circles x1", "moons x4", "y2 moons", "subnetwork 1"] {
        assert!(ticket_svg.contains(label), "ticket lacks {label:?}");
    }
    assert!(!figures
        .join(format!("ticket_{task}_level{level}.png"))
        .exists());
    let (bad, _, err) = coordinator(&[
        "plot",
        "looked",
        "--out",
        figures.to_str().unwrap(),
        "--ticket",
        "ffffffffffff",
        "--db",
        &db,
    ])
    .await;
    assert!(
        !bad && err.contains("no task whose id starts with"),
        "{err}"
    );

    // The static report: settings, progress, tables and inline figures in one file.
    let report_dir = dir.join("report");
    ok(&[
        "report",
        "looked",
        "--out",
        report_dir.to_str().unwrap(),
        "--coordinator",
        &url,
    ])
    .await;
    let page = std::fs::read_to_string(report_dir.join("index.html")).unwrap();
    for needle in [
        "<table id=\"table-points\"",
        "<table id=\"table-tasks\"",
        "<table id=\"table-levels\"",
        "<figure id=\"fig-fraction\"",
        "<figure id=\"fig-outcomes\"",
        "<figure id=\"fig-active\"",
        "<figure id=\"fig-loss\"",
        "<figure id=\"fig-levels\"",
        "<figure id=\"fig-ticket_",
        "6 of 6</b> tasks done",
        "extension_levels: [0, 2, 4]",
    ] {
        assert!(page.contains(needle), "report lacks {needle:?}");
    }
    assert!(page.matches("<svg").count() >= 4);
    assert!(
        !page.contains("http-equiv=\"refresh\""),
        "the static page does not reload"
    );
    assert!(!page.contains("src=\"http"), "self-contained");
    t.server.shutdown().await.unwrap();
}

/// One HTTP/1.1 GET over loopback: (status code, body).
async fn get(url: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://").expect("http url");
    let (host, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_string()), |(h, p)| (h, format!("/{p}")));
    let mut stream = tokio::net::TcpStream::connect(host).await.expect("connect");
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let response = String::from_utf8_lossy(&response).into_owned();
    let code = response
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map_or(String::new(), |(_, b)| b.to_string());
    (code, body)
}

async fn start_pages(db: &Path) -> coordinator::http::RunningHttp {
    let mut config = coordinator::http::HttpConfig::new(db);
    config.cache_for = Duration::ZERO;
    config.refresh_seconds = 2;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    coordinator::http::RunningHttp::start(config, listener).unwrap()
}

/// Sends `request` as is to the page server at `addr`; what comes back before it closes (or
/// `None` when it stays open longer than `limit`).
fn raw_exchange(addr: &str, request: &[u8], limit: Duration) -> Option<String> {
    use std::io::{Read, Write};
    let mut socket = std::net::TcpStream::connect(addr).unwrap();
    socket.set_read_timeout(Some(limit)).unwrap();
    socket.write_all(request).unwrap();
    let mut answer = Vec::new();
    match socket.read_to_end(&mut answer) {
        Ok(_) => Some(String::from_utf8_lossy(&answer).into_owned()),
        Err(_) => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_refuses_foreign_hosts_and_closes_idle_and_slow_connections() {
    let t = start().await;
    let pages = start_pages(&t.config.db_path).await;
    let addr = pages.url().trim_start_matches("http://").to_string();
    let limit = coordinator::http::FIRST_BYTE_TIMEOUT + Duration::from_secs(5);
    let exchanges = [
        format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\n\r\n"),
        // DNS rebinding: a page of another site that resolved its name to 127.0.0.1.
        "GET /healthz HTTP/1.1\r\nHost: evil.example\r\n\r\n".to_string(),
        // Connected, sends nothing.
        String::new(),
        // Starts its headers and never finishes them.
        "GET /healthz HTTP/1.1\r\nHost: localh".to_string(),
    ]
    .map(|request| {
        let addr = addr.clone();
        tokio::task::spawn_blocking(move || raw_exchange(&addr, request.as_bytes(), limit))
    });
    let mut answers = Vec::new();
    for exchange in exchanges {
        answers.push(exchange.await.unwrap());
    }
    let answer = |i: usize| answers[i].as_deref().unwrap_or("<still open>");
    assert!(answer(0).starts_with("HTTP/1.1 200"), "{}", answer(0));
    assert!(answer(1).starts_with("HTTP/1.1 421"), "{}", answer(1));
    assert!(answer(1).contains("loopback hosts only"), "{}", answer(1));
    assert_eq!(
        answers[2].as_deref(),
        Some(""),
        "the idle connection stayed open"
    );
    assert!(
        answers[3].as_ref().is_some_and(|a| !a.contains(" 200 ")),
        "the slow client was served or kept: {}",
        answer(3)
    );
    pages.shutdown().await.unwrap();
    t.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn live_page_follows_the_results() {
    let t = start().await;
    let mut client = t.client().await;
    submit(&mut client, SWEEP).await.unwrap();
    let pages = start_pages(&t.config.db_path).await;

    let (code, index) = get(&format!("{}/", pages.url())).await;
    assert_eq!(code, 200);
    assert!(index.contains("/sweeps/looked"), "{index}");
    let (code, before) = get(&format!("{}/sweeps/looked", pages.url())).await;
    assert_eq!(code, 200);
    assert!(
        before.contains("0 of 6</b> tasks done") && before.contains("No figures yet"),
        "{before}"
    );
    assert!(before.contains("<meta http-equiv=\"refresh\" content=\"2\">"));

    // One task finished: the page shows it on the next request.
    let mut w = t.worker("w").await;
    let lease = w.lease().await.unwrap().unwrap();
    w.finish(&lease).await.unwrap();
    let (_, after) = get(&format!("{}/sweeps/looked", pages.url())).await;
    assert!(after.contains("1 of 6</b> tasks done"), "{after}");
    assert!(
        after.contains("<figure id=\"fig-fraction\"")
            && after.contains("<table id=\"table-points\"")
    );
    assert!(
        after.contains("<table id=\"table-workers\""),
        "the live worker is listed"
    );

    let (code, csv) = get(&format!("{}/sweeps/looked/export.csv", pages.url())).await;
    assert_eq!(code, 200);
    assert!(csv.starts_with("sweep,task_id,"), "{csv}");
    let (code, _) = get(&format!("{}/sweeps/nope", pages.url())).await;
    assert_eq!(code, 404);
    assert_eq!(
        get(&format!("{}/healthz", pages.url())).await,
        (200, "ok".to_string())
    );
    pages.shutdown().await.unwrap();
    t.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn serve_http_flag_serves_the_report() {
    let t = finished().await;
    let db = t.config.db_path.clone();
    t.server.shutdown().await.unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_coordinator"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--http",
            "127.0.0.1:0",
            "--db",
        ])
        .arg(&db)
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    use tokio::io::AsyncBufReadExt;
    let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let url = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(rest) = line.strip_prefix("report pages at ") {
                return rest.trim().trim_end_matches('/').to_string();
            }
        }
        panic!("serve ended without announcing its pages");
    })
    .await
    .expect("pages announced");
    let (code, page) = get(&format!("{url}/sweeps/looked")).await;
    assert_eq!(code, 200);
    assert!(page.contains("6 of 6</b> tasks done") && page.contains("<svg"));
    child.kill().await.unwrap();

    let (bad, _, err) = coordinator(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--http",
        "0.0.0.0:0",
        "--db",
        db.to_str().unwrap(),
    ])
    .await;
    assert!(!bad && err.contains("no authentication"), "{err}");
}

/// Debian's chromium. A missing browser fails the test with the command that installs it
/// (`bash .ci/test`, the README's test command, installs it first): a skipped browser check
/// would pass without checking anything.
fn chromium() -> PathBuf {
    for path in ["/usr/bin/chromium", "/usr/bin/chromium-browser"] {
        if Path::new(path).exists() {
            return PathBuf::from(path);
        }
    }
    panic!(
        "chromium is not installed: run the tests with `bash .ci/test`, which installs it, \
         or `apt-get install -y chromium`"
    );
}

async fn headless(browser: &Path, profile: &Path, args: &[&str]) -> String {
    let out = tokio::time::timeout(
        Duration::from_secs(120),
        tokio::process::Command::new(browser)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .args(args)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("chromium finished in time")
    .expect("chromium runs");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn report_renders_in_a_headless_browser() {
    let browser = chromium();
    let t = finished().await;
    let pages = start_pages(&t.config.db_path).await;
    let url = format!("{}/sweeps/looked", pages.url());
    let profile = tempfile::tempdir().unwrap();

    // The live page loads: the DOM holds the tables and the inline SVG figures.
    let dom = headless(&browser, profile.path(), &["--dump-dom", &url]).await;
    assert!(dom.contains("<table id=\"table-points\""), "{dom}");
    assert!(dom.contains("<table id=\"table-tasks\""));
    assert!(dom.matches("<svg").count() >= 4, "figures in the DOM");
    assert!(dom.contains("networks that split"));

    // A screenshot of the page.
    let shot = t.dir.path().join("report.png");
    headless(
        &browser,
        profile.path(),
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1400,2000",
            &url,
        ],
    )
    .await;
    let png = std::fs::read(&shot).expect("a screenshot");
    let decoder = png::Decoder::new(std::io::Cursor::new(png));
    let mut reader = decoder.read_info().expect("a PNG screenshot");
    assert_eq!((reader.info().width, reader.info().height), (1400, 2000));
    let mut pixels = vec![0; reader.output_buffer_size()];
    let frame = reader.next_frame(&mut pixels).unwrap();
    let samples = frame.color_type.samples();
    let distinct: std::collections::HashSet<&[u8]> =
        pixels[..frame.buffer_size()].chunks(samples).collect();
    assert!(
        distinct.len() > 50,
        "the screenshot shows content, not a blank page"
    );
    if let Ok(keep) = std::env::var("REPORT_SCREENSHOT") {
        std::fs::copy(&shot, keep).unwrap();
    }

    // The static file works offline too.
    let report_dir = t.dir.path().join("report");
    ok(&[
        "report",
        "looked",
        "--out",
        report_dir.to_str().unwrap(),
        "--db",
        t.config.db_path.to_str().unwrap(),
    ])
    .await;
    let file_url = format!("file://{}", report_dir.join("index.html").display());
    let dom = headless(&browser, profile.path(), &["--dump-dom", &file_url]).await;
    assert!(dom.contains("<table id=\"table-points\"") && dom.matches("<svg").count() >= 4);
    pages.shutdown().await.unwrap();
    t.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_four_outcomes_read_back_from_results_and_the_export() {
    let t = finished().await;
    let db = t.config.db_path.display().to_string();
    let outcomes = [
        "separated",
        "separated_degraded",
        "interconnected",
        "degraded_unsplit",
    ];

    // The export: one outcome per task, repeated on each of its rows.
    let export: Vec<Value> = serde_json::from_str(&text(
        ok(&["export", "looked", "--format", "json", "--db", &db]).await,
    ))
    .unwrap();
    let mut per_point: std::collections::BTreeMap<u64, [u64; 4]> = Default::default();
    for row in export.iter().filter(|r| r["last_level"] == true) {
        let outcome = row["outcome"].as_str().expect("an outcome per task");
        let i = outcomes
            .iter()
            .position(|o| *o == outcome)
            .expect("a known outcome");
        per_point
            .entry(row["extension_level"].as_u64().unwrap())
            .or_default()[i] += 1;
        assert!(row["remaining_at_first_split"].is_null() == row["first_split_level"].is_null());
        assert_eq!(row["engine"], shared::synthetic::SYNTHETIC_ENGINE);
    }
    let csv = text(ok(&["export", "looked", "--format", "csv", "--db", &db]).await);
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    for column in ["outcome", "remaining_at_first_split", "engine"] {
        assert!(header.contains(&column), "export csv lacks {column}");
    }

    // results --format json: the four fractions and counts of each grid point agree with the
    // export's per-task outcomes, partition the finished seeds, and come with intervals.
    let rows: Vec<Value> = serde_json::from_str(&text(
        ok(&["results", "looked", "--format", "json", "--db", &db]).await,
    ))
    .unwrap();
    assert_eq!(rows.len(), per_point.len());
    for r in &rows {
        let n = r["seeds_done"].as_u64().unwrap();
        let expected = per_point[&r["extension_level"].as_u64().unwrap()];
        let mut total = 0.0;
        for (i, o) in outcomes.iter().enumerate() {
            assert_eq!(r[*o].as_u64(), Some(expected[i]), "{o} in {r}");
            let frac = r[format!("frac_{o}")].as_f64().unwrap();
            assert!(
                (frac - expected[i] as f64 / n as f64).abs() < 1e-12,
                "{o} in {r}"
            );
            let ci = r[format!("frac_{o}_ci")].as_array().unwrap();
            assert!(ci[0].as_f64().unwrap() <= frac && frac <= ci[1].as_f64().unwrap());
            total += frac;
        }
        assert!((total - 1.0).abs() < 1e-12, "{r}");
        assert_eq!(r["frac_separated"], r["frac_split"]);
        if r["separated"].as_u64().unwrap() + r["separated_degraded"].as_u64().unwrap() > 0 {
            let (mean, min, max) = (
                r["active_at_split_mean"].as_f64().unwrap(),
                r["active_at_split_min"].as_f64().unwrap(),
                r["active_at_split_max"].as_f64().unwrap(),
            );
            assert!(min <= mean && mean <= max, "{r}");
            assert!(r["remaining_at_split_median"].as_f64().unwrap() >= min);
        }
    }
    let csv = text(ok(&["results", "looked", "--format", "csv", "--db", &db]).await);
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    for o in outcomes {
        assert!(header.contains(&o) && header.contains(&format!("frac_{o}").as_str()));
    }
    t.server.shutdown().await.unwrap();
}

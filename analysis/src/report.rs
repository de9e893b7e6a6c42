//! The report: one self-contained static HTML page per sweep (settings, progress, the
//! statistics tables and every figure as inline SVG), viewable offline in any browser.
//! `coordinator report` writes it to a folder; `coordinator serve --http` serves the same page
//! live ([`crate::http`]), refreshed as results arrive.
//!
//! [`render`] is a pure function of the stored data; figures that cannot be drawn yet (no
//! level stored) are replaced by a note.

use std::fmt::Write as _;

use crate::data::{Progress, SweepData, TicketData};
use crate::plot::{self, Figure};
use crate::stats::{self, Axis};
use crate::tables::{self, duration};

/// What a report page shows.
#[derive(Debug, Clone, Copy)]
pub struct ReportInput<'a> {
    pub data: &'a SweepData,
    /// The sweep's progress and the live workers, when known.
    pub status: Option<&'a Progress>,
    /// The ticket to draw (see [`SweepData::showcase`]).
    pub ticket: Option<&'a TicketData>,
    /// Reload the page every this many seconds (live pages).
    pub refresh_seconds: Option<u32>,
    /// When the page is made (milliseconds since the Unix epoch).
    pub generated_unix_ms: i64,
}

/// Escapes text for HTML.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A UTC timestamp `YYYY-MM-DD HH:MM:SS UTC` of milliseconds since the Unix epoch.
pub fn utc(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

const STYLE: &str = r#"
body { font-family: "DejaVu Sans", Verdana, Arial, sans-serif; color: #1a1a1a; margin: 0 auto;
       max-width: 1500px; padding: 1em 2em 4em; line-height: 1.4; }
h1 { margin-bottom: 0.1em; }
h2 { border-bottom: 2px solid #0072b2; padding-bottom: 0.2em; margin-top: 2em; }
.muted { color: #666; }
nav a { margin-right: 1.2em; }
table { border-collapse: collapse; font-size: 14px; margin: 0.5em 0 1.5em; }
th, td { padding: 4px 10px; border-bottom: 1px solid #ddd; text-align: right; white-space: nowrap; }
th { background: #f0f4f8; }
td.l, th.l { text-align: left; }
.scroll { overflow-x: auto; }
figure { margin: 1.5em 0 2.5em; }
figure svg { width: 100%; max-width: 1200px; height: auto; border: 1px solid #e5e5e5; }
figcaption { color: #444; margin-top: 0.3em; }
pre { background: #f6f6f6; padding: 1em; overflow-x: auto; }
progress { width: 32em; height: 1.4em; vertical-align: middle; }
.bad { color: #b00020; }
"#;

fn table_html(id: &str, headers: &[&str], rows: &[Vec<String>], left: usize) -> String {
    let mut out = format!("<div class=\"scroll\"><table id=\"{id}\">\n<thead><tr>");
    for (i, h) in headers.iter().enumerate() {
        let class = if i < left { " class=\"l\"" } else { "" };
        let _ = write!(out, "<th{class}>{}</th>", escape(h));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for row in rows {
        out.push_str("<tr>");
        for (i, cell) in row.iter().enumerate() {
            let class = if i < left { " class=\"l\"" } else { "" };
            let _ = write!(out, "<td{class}>{}</td>", escape(cell));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody></table></div>\n");
    out
}

/// The distinct values of an axis over the sweep's tasks, as text.
fn values(data: &SweepData, axis: Axis) -> String {
    let mut v: Vec<stats::AxisValue> = data.tasks.iter().map(|t| axis.value(&t.spec)).collect();
    v.sort();
    v.dedup();
    let shown: Vec<String> = v.iter().take(30).map(ToString::to_string).collect();
    let mut text = shown.join(", ");
    if v.len() > 30 {
        let _ = write!(text, ", ... ({} values)", v.len());
    }
    text
}

/// Whether a task of the sweep leaves the protocol's value of a control (random pruning,
/// coupling, rewinding): then the page shows the controls' settings and columns.
fn uses_controls(data: &SweepData) -> bool {
    data.tasks.iter().any(|t| {
        Axis::CONTROLS
            .iter()
            .any(|&a| crate::axis::is_control_set(a, &t.spec))
    })
}

fn settings(data: &SweepData) -> String {
    let mut out = String::new();
    if let Some(d) = description(&data.yaml) {
        let _ = writeln!(out, "<p>{}</p>", escape(&d));
    }
    let mut rows: Vec<Vec<String>> = vec![vec!["tasks".into(), data.tasks.len().to_string()]];
    rows.push(vec![
        "grid points".into(),
        stats::group_by(&data.tasks, &Axis::GRID).len().to_string(),
    ]);
    for axis in [
        Axis::Shape,
        Axis::ExtensionLevel,
        Axis::Weights,
        Axis::Levels,
        Axis::Rate,
        Axis::Target,
        Axis::Scope,
        Axis::Seed,
    ] {
        rows.push(vec![axis.label().to_string(), values(data, axis)]);
    }
    if uses_controls(data) {
        for axis in Axis::CONTROLS {
            rows.push(vec![axis.label().to_string(), values(data, axis)]);
        }
    }
    if let Some(spec) = data.tasks.first().map(|t| &t.spec) {
        let problems: Vec<&str> = spec
            .data
            .problems
            .iter()
            .map(plot::ticket::problem_name)
            .collect();
        rows.push(vec![
            "problems".into(),
            format!(
                "{} ({} points each, {:.0}% held out, data seed {})",
                problems.join(" + "),
                spec.data.samples,
                spec.data.test_fraction * 100.0,
                values(data, Axis::DataSeed)
            ),
        ]);
        let t = &spec.train;
        rows.push(vec![
            "training".into(),
            format!(
                "Adam lr {}, batch {}, at most {} epochs, patience {}",
                t.learning_rate, t.batch_size, t.max_epochs, t.patience
            ),
        ]);
    }
    out.push_str(&table_html(
        "table-settings",
        &["setting", "value"],
        &rows,
        2,
    ));
    let _ = writeln!(
        out,
        "<details><summary>The sweep file</summary><pre>{}</pre></details>",
        escape(&data.yaml)
    );
    out
}

/// The `description:` line of a sweep file (only that key is read).
fn description(yaml: &str) -> Option<String> {
    yaml.lines().find_map(|line| {
        let rest = line.strip_prefix("description:")?;
        let text = rest.trim().trim_matches('"').trim_matches('\'').to_string();
        (!text.is_empty()).then_some(text)
    })
}

fn progress(data: &SweepData, status: Option<&Progress>) -> String {
    let mut out = String::new();
    let (pending, leased, done, failed) = data.counts();
    let total = data.tasks.len();
    let _ = writeln!(
        out,
        "<p><progress id=\"progress-tasks\" value=\"{}\" max=\"{}\"></progress> \
         <b>{done} of {total}</b> tasks done, {leased} running, {pending} pending, \
         <span class=\"{}\">{failed} failed</span></p>",
        done + failed,
        total.max(1),
        if failed > 0 { "bad" } else { "" }
    );
    let levels: usize = data.tasks.iter().map(|t| t.levels.len()).sum();
    let planned: usize = data.tasks.iter().map(|t| t.spec.prune.levels + 1).sum();
    let mut line = format!("Levels stored: {levels} of at most {planned}.");
    if let Some(s) = status.and_then(|s| s.sweep.as_ref()) {
        if pending + leased == 0 {
            line.push_str(" No task is pending or running.");
        } else {
            let _ = write!(
                line,
                " {}Throughput {:.1} tasks/h, {:.1} levels/min; ETA {}.",
                s.work_done.map_or_else(String::new, |f| format!(
                    "{:.0}% of the expected work done. ",
                    100.0 * f
                )),
                s.tasks_per_hour,
                s.levels_per_minute,
                s.eta_seconds
                    .map_or_else(|| "unknown".to_string(), duration)
            );
        }
        for f in &s.failures {
            let _ = write!(
                line,
                "</p>\n<p class=\"bad\">Task {} failed after {} attempt(s): {}",
                escape(&f.task_id),
                f.attempts,
                escape(&f.error)
            );
        }
    }
    let _ = writeln!(out, "<p>{line}</p>");
    if let Some(status) = status {
        let rows: Vec<Vec<String>> = status
            .workers
            .iter()
            .flat_map(|w| {
                let ago = w.seconds_since_seen;
                let base = vec![
                    w.name.clone(),
                    w.hostname.clone(),
                    format!("{} ago", duration(ago)),
                ];
                if w.tasks.is_empty() {
                    vec![[base, vec!["idle".into(), String::new()]].concat()]
                } else {
                    w.tasks
                        .iter()
                        .map(|t| [base.clone(), vec![t.0.clone(), t.1.to_string()]].concat())
                        .collect()
                }
            })
            .collect();
        if rows.is_empty() {
            out.push_str("<p class=\"muted\">No live workers.</p>\n");
        } else {
            out.push_str(&table_html(
                "table-workers",
                &["worker", "host", "last heard", "task", "level"],
                &rows,
                4,
            ));
        }
    }
    out
}

fn statistics(data: &SweepData) -> String {
    let mut out = String::new();
    out.push_str(
        "<p>The four outcomes classify a run by its trajectory, as the thesis did: \
         <b>separated</b> (split at the last level), <b>separated, then degraded</b> (split at \
         some level, degraded later), <b>interconnected</b> (never split, never degraded) and \
         <b>degraded</b> (degraded without ever having split). Fractions count finished tasks, \
         with 95% Wilson score intervals in brackets. Active weights at the first split: mean \
         [min-max] over seeds, against the weights remaining at that level (median). Other \
         figures: medians with the range over seeds in brackets.</p>\n<h3>By grid point</h3>\n",
    );
    let groups = stats::group_by(&data.tasks, &Axis::GRID);
    let controls = uses_controls(data);
    let rows: Vec<Vec<String>> = groups
        .iter()
        .map(|g| {
            let p = |p: &stats::Proportion| format!("{:.2} [{:.2}, {:.2}]", p.frac, p.ci.0, p.ci.1);
            let mut row = vec![
                g.value(Axis::Shape)
                    .map(ToString::to_string)
                    .unwrap_or_default(),
                g.value(Axis::ExtensionLevel)
                    .map(ToString::to_string)
                    .unwrap_or_default(),
                g.available_weights
                    .map(|s| stats::format_float(s.median))
                    .unwrap_or_default(),
                g.value(Axis::Levels)
                    .map(ToString::to_string)
                    .unwrap_or_default(),
                g.value(Axis::Rate)
                    .map(ToString::to_string)
                    .unwrap_or_default(),
                g.value(Axis::Target)
                    .map(ToString::to_string)
                    .unwrap_or_default(),
                format!("{}/{}", g.tasks_done, g.tasks_total),
                p(&g.separated),
                p(&g.separated_degraded),
                p(&g.interconnected),
                p(&g.degraded_unsplit),
                g.active_at_split
                    .map(|s| {
                        format!(
                            "{} [{}-{}]",
                            stats::format_float(s.mean.round()),
                            stats::format_float(s.min),
                            stats::format_float(s.max)
                        )
                    })
                    .unwrap_or_default(),
                g.remaining_at_split
                    .map(|s| stats::format_float(s.median))
                    .unwrap_or_default(),
                tables::spread_text(g.first_split_level),
                tables::spread_text(g.first_degraded_level),
                g.test_accuracy
                    .iter()
                    .map(|a| format!("{a:.3}"))
                    .collect::<Vec<_>>()
                    .join(" / "),
            ];
            if controls {
                let cells =
                    Axis::CONTROLS.map(|a| g.value(a).map(ToString::to_string).unwrap_or_default());
                row.splice(6..6, cells);
            }
            row
        })
        .collect();
    let mut headers = vec!["shape", "ext", "weights", "levels", "rate", "target"];
    if controls {
        headers.extend(["method", "coupling", "rewind epochs"]);
    }
    headers.extend([
        "done",
        "separated",
        "separated, then degraded",
        "interconnected",
        "degraded",
        "active at split",
        "remaining at split",
        "first split level",
        "first degraded level",
        "test accuracy",
    ]);
    out.push_str(&table_html("table-points", &headers, &rows, 1));

    out.push_str("<h3>Per task</h3>\n");
    let tasks: Vec<(String, stats::TaskSummary)> = data
        .tasks
        .iter()
        .map(|t| {
            let point = format!(
                "{} L{} r{}",
                stats::shape_name(&t.spec.shape),
                t.spec.prune.levels,
                stats::format_float(t.spec.prune.rate)
            );
            (point, stats::summarize(t))
        })
        .collect();
    let (headers, rows) = tables::task_cells(&tasks);
    out.push_str(&table_html("table-tasks", &headers, &rows, 2));

    if let Some(point) = plot::levels::chosen_point(&data.tasks, None) {
        let spec = &point[0].spec;
        let _ = writeln!(
            out,
            "<h3>Weights by pruning level: {}, {} levels at rate {}</h3>",
            escape(&stats::shape_name(&spec.shape)),
            spec.prune.levels,
            stats::format_float(spec.prune.rate)
        );
        let (headers, rows) = tables::level_cells(&stats::level_stats(&point));
        out.push_str(&table_html("table-levels", &headers, &rows, 1));
    }
    out
}

fn figure_html(f: &Figure) -> String {
    let svg = f
        .svg
        .trim_start_matches(|c: char| c != '<')
        .trim_start_matches("<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
    format!(
        "<figure id=\"fig-{}\">\n{}\n<figcaption>{}</figcaption>\n</figure>\n",
        escape(&f.name),
        svg.trim(),
        escape(&f.title)
    )
}

/// The report page.
pub fn render(input: ReportInput<'_>) -> String {
    let data = input.data;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
    );
    if let Some(s) = input.refresh_seconds {
        let _ = writeln!(out, "<meta http-equiv=\"refresh\" content=\"{s}\">");
    }
    let _ = writeln!(
        out,
        "<title>{} - lottery sweep report</title>\n<style>{STYLE}</style>\n</head>\n<body>",
        escape(&data.sweep)
    );
    let _ = writeln!(out, "<h1>Sweep {}</h1>", escape(&data.sweep));
    let _ = writeln!(
        out,
        "<p class=\"muted\">Generated {} by coordinator {}{}.</p>",
        utc(input.generated_unix_ms),
        env!("CARGO_PKG_VERSION"),
        match input.refresh_seconds {
            Some(s) => format!("; live, reloaded every {s} s"),
            None => String::new(),
        }
    );
    out.push_str(
        "<nav><a href=\"#progress\">Progress</a><a href=\"#settings\">Settings</a>\
         <a href=\"#statistics\">Statistics</a><a href=\"#figures\">Figures</a></nav>\n",
    );
    let _ = writeln!(
        out,
        "<section id=\"progress\"><h2>Progress</h2>\n{}</section>",
        progress(data, input.status)
    );
    let _ = writeln!(
        out,
        "<section id=\"settings\"><h2>Settings</h2>\n{}</section>",
        settings(data)
    );
    let _ = writeln!(
        out,
        "<section id=\"statistics\"><h2>Statistics</h2>\n{}</section>",
        statistics(data)
    );
    out.push_str("<section id=\"figures\"><h2>Figures</h2>\n");
    let options = plot::Options {
        sweep: data.sweep.clone(),
        shape: None,
        png: false,
    };
    match plot::sweep_figures(&data.tasks, &options) {
        Ok(figures) => {
            for f in &figures {
                out.push_str(&figure_html(f));
            }
        }
        Err(e) => {
            let _ = writeln!(
                out,
                "<p class=\"muted\">No figures yet: {}</p>",
                escape(&e.to_string())
            );
        }
    }
    if let Some(t) = input.ticket {
        match plot::ticket::figure(
            &data.sweep,
            &t.spec,
            t.metrics.as_ref(),
            t.level,
            &t.masks,
            false,
        ) {
            Ok(f) => out.push_str(&figure_html(&f)),
            Err(e) => {
                let _ = writeln!(
                    out,
                    "<p class=\"muted\">The ticket figure is not drawn: {}</p>",
                    escape(&e.to_string())
                );
            }
        }
    }
    out.push_str("</section>\n</body>\n</html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_escapes() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400_000), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(1_764_152_645_000), "2025-11-26 10:24:05 UTC");
        assert_eq!(escape("<a href='x'>&"), "&lt;a href=&#39;x&#39;&gt;&amp;");
    }

    #[test]
    fn page_has_tables_and_inline_figures() {
        let tasks = crate::export::tests::sample_tasks();
        let states = tasks
            .iter()
            .map(|t| {
                if t.done {
                    shared::state::TaskState::Done
                } else {
                    shared::state::TaskState::Leased
                }
            })
            .collect();
        let data = SweepData {
            sweep: "t".into(),
            yaml: "name: t\ndescription: A <test> sweep\n".into(),
            tasks,
            states,
            state: "active".into(),
        };
        let (id, level) = data.showcase().unwrap();
        let task = data.tasks.iter().find(|t| t.spec.id() == id).unwrap();
        let ticket = TicketData {
            spec: task.spec.clone(),
            level,
            metrics: task.levels.get(level).cloned(),
            masks: shared::synthetic::synthetic_masks(&task.spec, level),
        };
        let page = render(ReportInput {
            data: &data,
            status: None,
            ticket: Some(&ticket),
            refresh_seconds: Some(5),
            generated_unix_ms: 0,
        });
        assert!(page.starts_with("<!DOCTYPE html>"));
        assert!(page.contains("<meta http-equiv=\"refresh\" content=\"5\">"));
        assert!(page.contains("A &lt;test&gt; sweep"));
        for id in [
            "table-settings",
            "table-points",
            "table-tasks",
            "table-levels",
            "fig-fraction",
            "fig-active",
            "fig-levels",
            "fig-ticket_",
        ] {
            assert!(page.contains(id), "{id} missing");
        }
        assert!(page.matches("<svg").count() >= 4);
        assert!(!page.contains("<?xml"));
        assert!(page.contains("3 of 4</b> tasks done"));
    }
}

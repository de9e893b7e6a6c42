//! Task round trips per second against an in-process coordinator with a durable SQLite
//! database: `cargo bench -p coordinator --bench roundtrip [-- WORKERS TASKS]`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let workers = args.first().and_then(|a| a.parse().ok()).unwrap_or(8);
    let tasks = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(2000);
    let dir = std::env::temp_dir().join(format!("coordinator-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let runtime = tokio::runtime::Runtime::new()?;
    for workers in [1, workers] {
        let report =
            runtime.block_on(coordinator::bench::run(coordinator::bench::BenchConfig {
                workers,
                tasks,
                db_path: dir.join("bench.db"),
                pace: None,
                server_exe: None,
            }))?;
        println!("{report}");
    }
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

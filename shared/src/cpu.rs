//! The CPU this build needs: x86-64 builds target x86-64-v3 (`.cargo/config.toml`), so a CPU
//! without AVX2 or FMA cannot run them. The binaries check at start and say so, instead of
//! dying of an illegal instruction somewhere in training.
//!
//! The check is best effort: it runs before anything else in `main`, but code compiled for
//! x86-64-v3 could in principle use such an instruction even before it. Elsewhere (other
//! architectures, or a build for a baseline x86-64) nothing is required.

/// The instruction-set extensions this build was compiled to use that `detected` does not
/// report (names as `is_x86_feature_detected!` spells them).
pub fn missing(detected: impl Fn(&str) -> bool) -> Vec<&'static str> {
    let compiled: &[(&str, bool)] = &[
        ("avx", cfg!(target_feature = "avx")),
        ("avx2", cfg!(target_feature = "avx2")),
        ("fma", cfg!(target_feature = "fma")),
        ("bmi1", cfg!(target_feature = "bmi1")),
        ("bmi2", cfg!(target_feature = "bmi2")),
    ];
    compiled
        .iter()
        .filter(|&&(name, used)| used && !detected(name))
        .map(|&(name, _)| name)
        .collect()
}

/// The arithmetic this build trains with on this CPU: the engine's sparse kernels take explicit
/// AVX2/FMA code where the CPU has both and portable code elsewhere, and the matrix products
/// (gemm) choose their kernels by instruction set too; the two round differently. A task
/// started on one arithmetic continues only on workers of the same one. `x86_64-avx2-fma`, or
/// `ARCH-portable` (`x86_64-portable`, `aarch64-portable`, ...).
pub fn arithmetic() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            return "x86_64-avx2-fma";
        }
    }
    portable()
}

/// [`arithmetic`] without the vector kernels.
fn portable() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "x86_64-portable",
        "aarch64" => "aarch64-portable",
        _ => "portable",
    }
}

/// An error naming what this CPU lacks, if the build uses instructions it does not have.
pub fn check() -> Result<(), String> {
    #[cfg(target_arch = "x86_64")]
    {
        let lacking = missing(|name| match name {
            "avx" => std::arch::is_x86_feature_detected!("avx"),
            "avx2" => std::arch::is_x86_feature_detected!("avx2"),
            "fma" => std::arch::is_x86_feature_detected!("fma"),
            "bmi1" => std::arch::is_x86_feature_detected!("bmi1"),
            "bmi2" => std::arch::is_x86_feature_detected!("bmi2"),
            _ => false,
        });
        if !lacking.is_empty() {
            return Err(format!(
                "this binary was built for x86-64-v3, and this cpu lacks {}: rebuild it for \
                 a baseline x86-64 with `RUSTFLAGS=\"\" cargo build ...`",
                lacking.join(", ")
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_what_the_build_uses_and_the_cpu_lacks() {
        // A CPU with everything lacks nothing.
        assert!(missing(|_| true).is_empty());
        // A CPU with nothing lacks exactly what the build was compiled for.
        let built_for_v3 = cfg!(all(target_feature = "avx2", target_feature = "fma"));
        let none = missing(|_| false);
        assert_eq!(none.contains(&"avx2"), built_for_v3);
        assert_eq!(none.contains(&"fma"), built_for_v3);
        // Only what is missing is named.
        let without_fma = missing(|name| name != "fma");
        assert!(without_fma.iter().all(|&n| n == "fma"));
    }
}

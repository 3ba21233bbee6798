//! `compat [--vectors FILE...] [--deviations FILE] [--verbose]`: run the conformance vectors.
//! Extra vector files run in addition to the ones in this crate. After the run, a self-check
//! changes each of our values that a vector pins, one at a time, and fails if any change
//! leaves the suite green. A skipped vector also fails the run.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut files = endpoints_compat_tests::default_vector_files();
    let mut deviations = endpoints_compat_tests::default_deviations_file();
    let mut verbose = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--vectors" => {
                let mut any = false;
                for f in args.by_ref() {
                    if f.starts_with("--") {
                        eprintln!("compat: `{f}` after --vectors: give options before the files");
                        return ExitCode::from(2);
                    }
                    files.push(PathBuf::from(f));
                    any = true;
                }
                if !any {
                    eprintln!("compat: --vectors needs at least one file");
                    return ExitCode::from(2);
                }
            }
            "--deviations" => match args.next() {
                Some(f) => deviations = PathBuf::from(f),
                None => {
                    eprintln!("compat: --deviations needs a file");
                    return ExitCode::from(2);
                }
            },
            "--verbose" => verbose = true,
            other => {
                eprintln!(
                    "compat: unknown argument `{other}`\nusage: compat [--verbose] [--deviations FILE] [--vectors FILE...]"
                );
                return ExitCode::from(2);
            }
        }
    }
    match endpoints_compat_tests::run(&files, &deviations) {
        Ok(report) => {
            if verbose {
                for (name, reason) in &report.deviations {
                    println!("deviation {name}\n          {reason}");
                }
            }
            print!("{}", report.render());
            // The suite's own check: each value the vectors pin, changed as a changed default
            // would change it, must fail the run.
            let check = match endpoints_compat_tests::self_check(&files, &deviations) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("compat: {e}");
                    return ExitCode::from(2);
                }
            };
            for hole in &check.unseen {
                println!("SELF-CHECK {hole}");
            }
            println!(
                "self-check: {} of {} changes to our pinned values fail the suite",
                check.seen.len(),
                check.tried
            );
            if report.ok() && check.unseen.is_empty() && check.tried > 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("compat: {e}");
            ExitCode::from(2)
        }
    }
}

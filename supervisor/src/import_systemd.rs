//! `kennel import-systemd FILE... [-o DIR]`: the kennel TOML unit equivalent to each systemd
//! `.service` file (with the `[[socket]]`s of the `.socket` files beside it that name it; a
//! `.socket` file given stands for its service), every approximation and directive not
//! honoured as a comment.

use std::io::Write as _;

use crate::cli::ImportSystemdArgs;
use crate::commands::{EXIT_FAILED, EXIT_OK};

pub fn import(args: ImportSystemdArgs) -> i32 {
    let mut code = EXIT_OK;
    if let Some(dir) = &args.output {
        if let Err(e) = std::fs::create_dir_all(dir) {
            eprintln!(
                "kennel import-systemd: cannot create {}: {e}",
                dir.display()
            );
            return EXIT_FAILED;
        }
    }
    // A .socket file stands for its service (imported with it): each service once.
    let mut services: Vec<std::path::PathBuf> = Vec::new();
    for file in &args.files {
        let service = if file.extension().is_some_and(|e| e == "socket") {
            match kennel_units::systemd::socket_service(file) {
                Ok(service) => service,
                Err(diags) => {
                    code = not_imported(file, &diags);
                    continue;
                }
            }
        } else {
            file.clone()
        };
        if !services.contains(&service) {
            services.push(service);
        }
    }
    for file in &services {
        let (unit, warnings) = match kennel_units::systemd::import_service(file) {
            Ok(found) => found,
            Err(diags) => {
                code = not_imported(file, &diags);
                continue;
            }
        };
        for w in &warnings {
            eprintln!("{w}");
        }
        let toml = kennel_units::systemd::to_toml(&unit, file, &warnings);
        // What is written must load as written (a check of the writer, not of the user).
        if let Err(diags) =
            kennel_units::parse_unit(&unit.name, std::path::Path::new("import.toml"), &toml)
        {
            for d in &diags {
                eprintln!("{d}");
            }
            eprintln!(
                "kennel import-systemd: the TOML made from {} does not load (a bug in kennel)",
                file.display()
            );
            code = EXIT_FAILED;
            continue;
        }
        match &args.output {
            None => {
                let mut out = std::io::stdout().lock();
                if writeln!(out, "{toml}").is_err() {
                    return EXIT_FAILED;
                }
            }
            Some(dir) => {
                let path = dir.join(format!("{}.toml", unit.name));
                let written = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&path)
                    .and_then(|mut f| f.write_all(toml.as_bytes()));
                match written {
                    Ok(()) => eprintln!("kennel import-systemd: wrote {}", path.display()),
                    Err(e) => {
                        eprintln!("kennel import-systemd: {}: {e}", path.display());
                        code = EXIT_FAILED;
                    }
                }
            }
        }
    }
    code
}

/// Prints why `file` is not imported; the exit code that makes.
fn not_imported(file: &std::path::Path, diags: &[kennel_units::Diagnostic]) -> i32 {
    for d in diags {
        eprintln!("{d}");
    }
    eprintln!("kennel import-systemd: {} not imported", file.display());
    EXIT_FAILED
}

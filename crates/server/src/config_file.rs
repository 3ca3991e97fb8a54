//! The configuration file (`--config rtcio.toml` / `RTCIO_CONFIG`) and
//! `--print-config`.
//!
//! The file holds any setting a flag holds, under the flag's long name
//! (`max-payload = 65536`; `max_payload` is accepted too). Precedence:
//! flags > environment > file > built-in defaults. Rather than a second
//! description of the settings, the file is read through the clap
//! definition itself: each key must name one of `Settings::command()`'s
//! arguments, its value is checked by that argument's own parser, and it
//! becomes that argument's default. Settings other features add to
//! `Settings` are thereby accepted in the file, and printed, with no extra
//! code.
//!
//! Secrets (arguments declared with `hide_env_values`, or whose name says
//! `secret`, `token`, `password` or `passwd`) are printed as `"<redacted>"`.

use std::collections::BTreeMap;
use std::error::Error as _;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, Command, CommandFactory, FromArgMatches};

use crate::config::Settings;

/// What [`load`] found to do.
pub enum Loaded {
    /// Run the server with these settings.
    Run(Box<Settings>),
    /// `--print-config` printed the configuration; exit successfully.
    Printed,
}

#[derive(Debug, Clone, clap::Args)]
pub struct ConfigFileArgs {
    /// A TOML file of settings, keyed by flag name (`port = 3001`,
    /// `max-payload = 65536`). Flags and environment variables override it.
    #[arg(long, env = "RTCIO_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Print the effective configuration as TOML (secrets redacted, each
    /// value's source in a comment) and exit.
    #[arg(long)]
    pub print_config: bool,
}

/// Arguments that are not settings and so not keys of the file.
const NOT_SETTINGS: &[&str] = &["config", "print_config", "help", "version"];

/// Words that make a setting secret even if its author forgot `hide_env_values`.
const SECRET_WORDS: &[&str] = &["secret", "token", "password", "passwd"];

/// Parses the process's arguments, environment and configuration file.
/// `Err` holds a message for stderr (`--help`/`--version` and flag errors
/// exit from inside, as clap does).
pub fn load() -> Result<Loaded, String> {
    load_from(std::env::args_os().collect(), &mut std::io::stdout())
}

fn load_from(args: Vec<OsString>, out: &mut dyn std::io::Write) -> Result<Loaded, String> {
    // First pass without the file: flags and environment, to find the file.
    let first = Settings::command()
        .try_get_matches_from(&args)
        .unwrap_or_else(|e| e.exit());
    let path = first.get_one::<PathBuf>("config").cloned();
    let (command, from_file) = match &path {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            with_file_defaults(Settings::command(), path, &text)?
        }
        None => (Settings::command(), Vec::new()),
    };
    let matches = match command.clone().try_get_matches_from(&args) {
        Ok(m) => m,
        Err(e) => match path.as_deref().and_then(|p| file_error(&e, p, &from_file)) {
            Some(message) => return Err(message),
            None => e.exit(),
        },
    };
    let settings = Settings::from_arg_matches(&matches).map_err(|e| e.to_string())?;
    if settings.config_file.print_config {
        let mut built = command.clone();
        built.build();
        let text = render(&built, &matches, &from_file, path.as_deref());
        out.write_all(text.as_bytes())
            .map_err(|e| format!("cannot print the configuration: {e}"))?;
        return Ok(Loaded::Printed);
    }
    Ok(Loaded::Run(Box::new(settings)))
}

/// `command` with the file's values as defaults; also the ids they set.
fn with_file_defaults(
    mut command: Command,
    path: &Path,
    text: &str,
) -> Result<(Command, Vec<FileKey>), String> {
    let file = path.display();
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| format!("{file}: {}", e.to_string().trim_end()))?;
    // Introspect a built copy (actions and value counts are final there);
    // defaults go on the unbuilt one (mutating a built command leaves its
    // flag index stale).
    let mut built = command.clone();
    built.build();
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    let mut defaults: Vec<(String, String, Vec<String>, bool)> = Vec::new();
    for (key, value) in &table {
        let long = key.replace('_', "-");
        let arg = built
            .get_arguments()
            .find(|a| a.get_long() == Some(long.as_str()) && is_setting(a))
            .ok_or_else(|| {
                format!("{file}: unknown key `{key}` (keys are the flag names, see --help)")
            })?;
        if let Some(other) = seen.insert(long.clone(), key.clone()) {
            return Err(format!(
                "{file}: `{key}` and `{other}` are the same setting"
            ));
        }
        let values =
            scalars(value, takes_many(arg)).map_err(|why| format!("{file}: key `{key}`: {why}"))?;
        defaults.push((
            arg.get_id().to_string(),
            key.clone(),
            values,
            is_secret(arg),
        ));
    }
    let mut keys = Vec::new();
    // A probe where nothing but the file gives these settings, so each of
    // the file's values is checked even where a flag or variable overrides it.
    let mut probe = command.clone();
    for (id, key, values, secret) in defaults {
        probe = probe.mut_arg(&id, |a| a.default_values(values.clone()).env(None));
        command = command.mut_arg(&id, |a| a.default_values(values));
        keys.push(FileKey { id, key, secret });
    }
    if let Err(e) = probe.try_get_matches_from(["rtcio-server"]) {
        return Err(file_error(&e, path, &keys).unwrap_or_else(|| format!("{file}: {e}")));
    }
    Ok((command, keys))
}

/// A setting the file gave: the clap argument id and the key as written.
pub struct FileKey {
    id: String,
    key: String,
    /// Its value is never repeated in an error.
    secret: bool,
}

/// Turns a clap error of the second pass into one naming the file's key.
/// The first pass already accepted the flags and the environment, so a
/// value error now comes from a default the file set.
fn file_error(e: &clap::Error, path: &Path, keys: &[FileKey]) -> Option<String> {
    use clap::error::{ContextKind, ContextValue};
    let arg = e.context().find_map(|(kind, v)| match (kind, v) {
        (ContextKind::InvalidArg, ContextValue::String(s)) => Some(s.clone()),
        _ => None,
    })?;
    // `--port <PORT>` → `port`.
    let long = arg.trim_start_matches('-').split([' ', '=']).next()?;
    let key = keys
        .iter()
        .find(|k| k.id.replace('_', "-") == long || k.key.replace('_', "-") == long)?;
    let value = e.context().find_map(|(kind, v)| match (kind, v) {
        (ContextKind::InvalidValue, ContextValue::String(s)) => Some(s.clone()),
        _ => None,
    });
    let reason = e
        .source()
        .map(|s| s.to_string())
        .or_else(|| {
            e.context().find_map(|(kind, v)| match (kind, v) {
                (ContextKind::ValidValue, ContextValue::Strings(s)) => {
                    Some(format!("possible values: {}", s.join(", ")))
                }
                _ => None,
            })
        })
        .unwrap_or_else(|| e.kind().to_string());
    let value = match value {
        Some(v) if !key.secret => format!(" `{v}`"),
        _ => String::new(),
    };
    Some(format!(
        "{}: key `{}`: invalid value{value}: {reason}",
        path.display(),
        key.key
    ))
}

fn is_setting(arg: &Arg) -> bool {
    !NOT_SETTINGS.contains(&arg.get_id().as_str()) && arg.get_long().is_some()
}

fn takes_many(arg: &Arg) -> bool {
    matches!(arg.get_action(), ArgAction::Append)
        || arg.get_value_delimiter().is_some()
        || arg.get_num_args().is_some_and(|n| n.max_values() > 1)
}

fn is_flag(arg: &Arg) -> bool {
    matches!(arg.get_action(), ArgAction::SetTrue | ArgAction::SetFalse)
}

fn is_secret(arg: &Arg) -> bool {
    let name = arg.get_id().as_str().to_ascii_lowercase();
    arg.is_hide_env_values_set() || SECRET_WORDS.iter().any(|w| name.contains(w))
}

/// A TOML value as the argument strings it stands for.
fn scalars(value: &toml::Value, many: bool) -> Result<Vec<String>, String> {
    let one = |v: &toml::Value| -> Result<String, String> {
        match v {
            toml::Value::String(s) => Ok(s.clone()),
            toml::Value::Integer(i) => Ok(i.to_string()),
            toml::Value::Float(f) => Ok(f.to_string()),
            toml::Value::Boolean(b) => Ok(b.to_string()),
            _ => Err("expected a string, a number or a boolean".to_string()),
        }
    };
    match value {
        toml::Value::Array(items) => {
            let items = items.iter().map(one).collect::<Result<Vec<_>, _>>()?;
            // A list setting written as one comma-separated value (`--transports a,b`).
            Ok(if many { items } else { vec![items.join(",")] })
        }
        v => one(v).map(|s| vec![s]),
    }
}

/// The effective configuration as TOML, with each value's source.
fn render(
    command: &Command,
    matches: &ArgMatches,
    from_file: &[FileKey],
    path: Option<&Path>,
) -> String {
    let mut out = String::from(
        "# rtcio-server: the effective configuration (usable as --config FILE).\n\
         # Precedence: flags > environment > file > defaults.\n",
    );
    if let Some(path) = path {
        out.push_str(&format!("# File: {}\n", path.display()));
    }
    // In the order of `--help` (giving a default moves an argument to the end).
    let order: Vec<String> = Settings::command()
        .get_arguments()
        .map(|a| a.get_id().to_string())
        .collect();
    let mut args: Vec<&Arg> = command.get_arguments().filter(|a| is_setting(a)).collect();
    args.sort_by_key(|a| order.iter().position(|id| id == a.get_id().as_str()));
    for arg in args {
        let id = arg.get_id().as_str();
        let key = arg.get_long().unwrap_or(id);
        let raw: Vec<String> = matches
            .get_raw(id)
            .map(|vals| vals.map(|v| v.to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        let source = match matches.value_source(id) {
            Some(ValueSource::CommandLine) => format!("--{key}"),
            Some(ValueSource::EnvVariable) => arg
                .get_env()
                .map(|e| format!("env {}", e.to_string_lossy()))
                .unwrap_or_else(|| "env".into()),
            Some(ValueSource::DefaultValue) if from_file.iter().any(|f| f.id == id) => {
                "file".into()
            }
            Some(_) => "default".into(),
            None => {
                out.push_str(&format!("# {key} = (not set)\n"));
                continue;
            }
        };
        let value = if is_secret(arg) {
            toml::Value::String("<redacted>".into())
        } else if is_flag(arg) && raw.len() == 1 {
            toml::Value::Boolean(raw[0] == "true")
        } else if takes_many(arg) {
            toml::Value::Array(raw.iter().map(|v| typed(v)).collect())
        } else {
            typed(&raw.join(","))
        };
        out.push_str(&format!("{key} = {value} # {source}\n"));
    }
    out
}

/// Integers as TOML integers (the file reads them back as the same text), the rest as strings.
fn typed(v: &str) -> toml::Value {
    match v.parse::<i64>() {
        Ok(i) if i.to_string() == v => toml::Value::Integer(i),
        _ => toml::Value::String(v.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> tempfile_lite::File {
        tempfile_lite::File::with(text)
    }

    /// A tiny temporary file (no extra dependency for two tests).
    mod tempfile_lite {
        use std::path::PathBuf;
        pub struct File(pub PathBuf);
        impl File {
            pub fn with(text: &str) -> File {
                static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
                let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let path = std::env::temp_dir()
                    .join(format!("rtcio-config-test-{}-{n}.toml", std::process::id()));
                std::fs::write(&path, text).unwrap();
                File(path)
            }
        }
        impl Drop for File {
            fn drop(&mut self) {
                let _ = std::fs::remove_file(&self.0);
            }
        }
    }

    fn run(args: &[&str]) -> Result<(Option<Settings>, String), String> {
        let mut argv = vec![OsString::from("rtcio-server")];
        argv.extend(args.iter().map(OsString::from));
        let mut printed = Vec::new();
        match load_from(argv, &mut printed)? {
            Loaded::Run(s) => Ok((Some(*s), String::new())),
            Loaded::Printed => Ok((None, String::from_utf8(printed).unwrap())),
        }
    }

    #[test]
    fn the_file_sets_defaults_and_flags_win() {
        let f = file("port = 4000\nmax_payload = 1234\nnamespace = \"/calls\"\ntransports = [\"websocket\"]\ncors-credentials = true\nallowed-origins = \"https://a.example\"\n");
        let path = f.0.to_str().unwrap();
        let (s, _) = run(&["--config", path, "--port", "5000"]).unwrap();
        let s = s.unwrap();
        assert_eq!(s.port, 5000, "a flag beats the file");
        assert_eq!(s.max_payload, 1234);
        assert_eq!(s.namespace, "/calls");
        assert_eq!(s.transports, "websocket");
        assert!(s.cors_credentials);
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_key() {
        let f = file("port = 1\nmax-paylod = 3\n");
        let err = run(&["--config", f.0.to_str().unwrap()]).err().unwrap();
        assert!(err.contains("unknown key `max-paylod`"), "{err}");

        let f = file("port = \"lots\"\n");
        let err = run(&["--config", f.0.to_str().unwrap()]).err().unwrap();
        assert!(err.contains("key `port`"), "{err}");

        let f = file("ping-interval = \"5h\"\n");
        let err = run(&["--config", f.0.to_str().unwrap()]).err().unwrap();
        assert!(
            err.contains("key `ping-interval`") && err.contains("unit"),
            "{err}"
        );

        let f = file("log-format = \"xml\"\n");
        let err = run(&["--config", f.0.to_str().unwrap()]).err().unwrap();
        assert!(
            err.contains("key `log-format`") && err.contains("json"),
            "{err}"
        );

        let f = file("metrics-token = \"\"\n");
        let err = run(&["--config", f.0.to_str().unwrap()]).err().unwrap();
        assert!(
            err.contains("key `metrics-token`: invalid value: must not be empty"),
            "{err}"
        );

        let f = file("port = 1\nport = 2\n");
        assert!(
            run(&["--config", f.0.to_str().unwrap()]).is_err(),
            "TOML duplicate"
        );
        let f = file("max-payload = 1\nmax_payload = 2\n");
        let err = run(&["--config", f.0.to_str().unwrap()]).err().unwrap();
        assert!(err.contains("same setting"), "{err}");
        let f = file("config = \"other.toml\"\n");
        assert!(run(&["--config", f.0.to_str().unwrap()]).is_err());
        let f = file("[section]\nport = 1\n");
        assert!(run(&["--config", f.0.to_str().unwrap()]).is_err());
    }

    #[test]
    fn print_config_redacts_secrets_and_reads_back() {
        let f = file("metrics-token = \"s3cret-value\"\nping-timeout = \"7s\"\n");
        let path = f.0.to_str().unwrap().to_owned();
        let (_, printed) = run(&["--config", &path, "--print-config", "--port", "4001"]).unwrap();
        assert!(!printed.contains("s3cret-value"), "{printed}");
        assert!(
            printed.contains("metrics-token = \"<redacted>\" # file"),
            "{printed}"
        );
        assert!(printed.contains("port = 4001 # --port"), "{printed}");
        assert!(
            printed.contains("ping-timeout = \"7s\" # file"),
            "{printed}"
        );
        assert!(
            printed.contains("host = \"0.0.0.0\" # default"),
            "{printed}"
        );
        assert!(
            printed.contains("cors-credentials = false # default"),
            "{printed}"
        );
        assert!(printed.contains("# tls-cert = (not set)"), "{printed}");
        // Without the redacted secret, the output is itself a valid file.
        let reread: String = printed
            .lines()
            .filter(|l| !l.contains("<redacted>"))
            .map(|l| format!("{l}\n"))
            .collect();
        let again = file(&reread);
        let (s, _) = run(&["--config", again.0.to_str().unwrap()]).unwrap();
        let s = s.unwrap();
        assert_eq!(s.port, 4001);
        assert_eq!(s.ping_timeout, std::time::Duration::from_secs(7));
    }
}

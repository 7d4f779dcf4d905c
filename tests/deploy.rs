//! The deployment files checked by the reference tools: the systemd unit by
//! `systemd-analyze verify` and `security`, the Kubernetes manifests by `kubernetes-validate`
//! (offline schemas), docker-compose.yml by `docker compose config` (or Debian's
//! `docker-compose`), and the Dockerfile against docker-compose.yml. `scripts/test.sh`
//! installs the tools (scripts/services.sh `ensure_test_tools`); a missing one fails here.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// Run a tool that must be installed; a missing one is a failure that says how to get it.
fn run(program: &str, args: &[&str], how_to_install: &str) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} not runnable ({e}): {how_to_install}"))
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A scratch directory of its own, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("opsguard-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const SYSTEMD: &str = "install Debian's systemd (apt-get install systemd), as scripts/test.sh does";

/// A root holding the system's unit files, a stub `/usr/local/bin/opsguard` (verify checks
/// that ExecStart is executable) and `unit` as `/etc/systemd/system/opsguard.service`.
fn systemd_root(tag: &str, unit: &str) -> Scratch {
    let root = Scratch::new(tag);
    let system = root.0.join("usr/lib/systemd/system");
    std::fs::create_dir_all(&system).unwrap();
    for entry in std::fs::read_dir("/usr/lib/systemd/system").expect(SYSTEMD) {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), system.join(entry.file_name())).unwrap();
        }
    }
    let bin = root.0.join("usr/local/bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::write(bin.join("opsguard"), "#!/bin/sh\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(bin.join("opsguard"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let units = root.0.join("etc/systemd/system");
    std::fs::create_dir_all(&units).unwrap();
    std::fs::write(units.join("opsguard.service"), unit).unwrap();
    root
}

fn systemd_analyze(root: &Scratch, args: &[&str]) -> Output {
    let root_arg = format!("--root={}", root.0.display());
    let mut all = vec![args[0], "--man=no", root_arg.as_str()];
    all.extend_from_slice(&args[1..]);
    all.push("/etc/systemd/system/opsguard.service");
    run("systemd-analyze", &all, SYSTEMD)
}

#[test]
fn the_systemd_unit_passes_systemd_analyze_verify_without_a_warning() {
    let unit = read("deploy/systemd/opsguard.service");
    let root = systemd_root("unit", &unit);
    let out = systemd_analyze(&root, &["verify"]);
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{}",
        text(&out)
    );
    // verify only warns about a misspelt key: the check above must see such a warning.
    let broken = unit.replace("ProtectHome=yes", "ProtectHome=yess\nProtectHomme=yes");
    let root = systemd_root("unit-broken", &broken);
    let out = systemd_analyze(&root, &["verify"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("yess") && err.contains("ProtectHomme"),
        "{}",
        text(&out)
    );
}

#[test]
fn the_systemd_unit_is_hardened_and_takes_secrets_as_credentials() {
    let unit = read("deploy/systemd/opsguard.service");
    let root = systemd_root("security", &unit);
    // systemd's own exposure score, 0 (locked down) to 10 (unprotected): at most 2.0 "OK".
    let out = systemd_analyze(&root, &["security", "--offline=yes", "--threshold=20"]);
    assert!(out.status.success(), "{}", text(&out));
    for line in [
        "ExecStart=/usr/local/bin/opsguard serve",
        "DynamicUser=yes",
        "StateDirectory=opsguard",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "CapabilityBoundingSet=\n",
        "SystemCallFilter=@system-service",
        "LoadCredential=telegram-token:/etc/opsguard/credentials/telegram-token",
        "Environment=OPSGUARD_TELEGRAM_TOKEN_FILE=%d/telegram-token",
        "Environment=DATABASE_URL_FILE=%d/database-url",
        "Environment=OPSGUARD_MASTER_KEY_FILE=%d/master-key",
        "#Environment=REDIS_URL_FILE=%d/redis-url",
    ] {
        assert!(unit.contains(line), "the unit lacks {line:?}");
    }
    // No secret value in the unit or its environment file: only credential file names.
    let env = read("deploy/systemd/opsguard.env");
    for secret in [
        "OPSGUARD_TELEGRAM_TOKEN=",
        "OPSGUARD_MASTER_KEY=",
        "DATABASE_URL=",
    ] {
        assert!(!unit.contains(secret) && !env.contains(secret), "{secret}");
    }
}

const KUBERNETES: &[&str] = &[
    "deploy/kubernetes/configmap.yaml",
    "deploy/kubernetes/secret.example.yaml",
    "deploy/kubernetes/deployment.yaml",
    "deploy/kubernetes/service.yaml",
    "deploy/kubernetes/poddisruptionbudget.yaml",
    "deploy/kubernetes/ingress.yaml",
    "deploy/kubernetes/networkpolicy.yaml",
];
const KUBE_VALIDATE: &str =
    "install kubernetes-validate (pip install kubernetes-validate), as scripts/test.sh does";

fn kubernetes_validate(files: &[PathBuf]) -> Output {
    let mut args = vec!["--strict".to_string()];
    args.extend(files.iter().map(|f| f.display().to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run("kubernetes-validate", &args, KUBE_VALIDATE)
}

#[test]
fn the_kubernetes_manifests_pass_the_schemas_offline() {
    let files: Vec<PathBuf> = KUBERNETES.iter().map(|f| repo(f)).collect();
    let out = kubernetes_validate(&files);
    assert!(out.status.success(), "{}", text(&out));
    let passed = String::from_utf8_lossy(&out.stdout)
        .matches(" passed ")
        .count()
        + String::from_utf8_lossy(&out.stderr)
            .matches(" passed ")
            .count();
    assert_eq!(passed, KUBERNETES.len(), "{}", text(&out));
    // The validator bites: a misspelt field and a wrong type are refused.
    let scratch = Scratch::new("kube");
    let broken = read("deploy/kubernetes/deployment.yaml")
        .replace("replicas: 2", "replicas: two")
        .replace(
            "readOnlyRootFilesystem: true",
            "readOnlyRootFilesytem: true",
        );
    let bad = scratch.0.join("deployment.yaml");
    std::fs::write(&bad, broken).unwrap();
    let out = kubernetes_validate(&[bad]);
    assert!(!out.status.success(), "{}", text(&out));
}

#[path = "deploy/facts.rs"]
mod facts;

/// Every document of a YAML file as JSON (PyYAML, which kubernetes-validate brings).
fn yaml_documents(rel: &str) -> Vec<Value> {
    let script =
        "import json,sys,yaml; print(json.dumps(list(yaml.safe_load_all(open(sys.argv[1])))))";
    let path = repo(rel).display().to_string();
    let out = run("python3", &["-c", script, &path], KUBE_VALIDATE);
    assert!(out.status.success(), "{}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

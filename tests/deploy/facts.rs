//! What the deployment files promise beyond their schemas: the Deployment's replicas, probes,
//! non-root read-only containers and secret files; compose without the bot token; an image
//! whose pg_dump can dump the compose PostgreSQL and whose health check is opsguard's own.

use super::{read, repo, text, yaml_documents};
use serde_json::Value;

fn find<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind}"))
}

#[test]
fn the_deployment_runs_two_probed_non_root_read_only_replicas() {
    let deployment = yaml_documents("deploy/kubernetes/deployment.yaml");
    let deployment = find(&deployment, "Deployment");
    assert_eq!(deployment["spec"]["replicas"], 2);
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        pod["securityContext"]["runAsUser"], 10001,
        "the image's USER"
    );
    let serve = &pod["containers"][0];
    assert_eq!(serve["args"][0], "serve");
    assert_eq!(serve["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(serve["readinessProbe"]["httpGet"]["path"], "/readyz");
    let migrate = &pod["initContainers"][0];
    assert_eq!(migrate["args"][0], "migrate", "migrations before serve");
    for container in [serve, migrate] {
        let security = &container["securityContext"];
        assert_eq!(security["readOnlyRootFilesystem"], true);
        assert_eq!(security["allowPrivilegeEscalation"], false);
        assert_eq!(security["capabilities"]["drop"][0], "ALL");
    }
    // Every *_FILE names a key of the Secret that the container's own secret volume
    // projects, in the directory it is mounted at; no secret value sits in the manifest.
    let secret = yaml_documents("deploy/kubernetes/secret.example.yaml");
    let keys = find(&secret, "Secret")["stringData"].as_object().unwrap();
    let mut readable = Vec::new();
    for container in [serve, migrate] {
        let (dir, items) = secret_mount(pod, container);
        for item in &items {
            assert!(keys.contains_key(item), "{item}: not a key of the Secret");
        }
        let files: Vec<&Value> = container["env"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["name"].as_str().unwrap().ends_with("FILE"))
            .collect();
        assert!(files.len() >= 2, "{container}");
        for env in files {
            let path = env["value"].as_str().unwrap();
            let key = path.strip_prefix(&format!("{dir}/")).expect(path);
            assert!(items.contains(&key.to_string()), "{path}: not mounted");
        }
        assert!(
            container["env"].as_array().unwrap().iter().all(|e| {
                e.get("valueFrom").is_none()
                    && !matches!(
                        e["name"].as_str(),
                        Some(
                            "DATABASE_URL"
                                | "OPSGUARD_TELEGRAM_TOKEN"
                                | "OPSGUARD_MASTER_KEY"
                                | "AWS_SECRET_ACCESS_KEY"
                        )
                    )
            }),
            "{container}"
        );
        readable.push(items);
    }
    // serve, the internet-facing process, cannot read the schema owner's URL; migrate
    // cannot read the bot token.
    assert!(!readable[0].contains(&"owner-database-url".to_string()));
    assert!(readable[1].contains(&"owner-database-url".to_string()));
    assert!(!readable[1].contains(&"telegram-token".to_string()));
    // The Service reaches these pods on their named HTTP port.
    let service = yaml_documents("deploy/kubernetes/service.yaml");
    let service = find(&service, "Service");
    for (label, value) in service["spec"]["selector"].as_object().unwrap() {
        assert_eq!(&pod_labels(deployment)[label], value);
    }
    assert_eq!(service["spec"]["ports"][0]["targetPort"], "http");
    assert_eq!(serve["ports"][0]["name"], "http");
}

/// The directory a container mounts its secret volume at, and the Secret's keys it projects
/// (a secret volume without `items` would project them all: refused).
fn secret_mount(pod: &Value, container: &Value) -> (String, Vec<String>) {
    let volumes = pod["volumes"].as_array().unwrap();
    let mut found = container["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| {
            let volume = volumes.iter().find(|v| v["name"] == m["name"])?;
            (volume["secret"]["secretName"] == "opsguard-secrets").then_some((m, volume))
        });
    let (mount, volume) = found.next().expect("the Secret mounted");
    assert!(found.next().is_none(), "one secret volume per container");
    let items = volume["secret"]["items"]
        .as_array()
        .unwrap_or_else(|| panic!("{volume}: every key of the Secret projected"))
        .iter()
        .map(|i| {
            assert_eq!(i["key"], i["path"]);
            i["key"].as_str().unwrap().to_string()
        })
        .collect();
    (mount["mountPath"].as_str().unwrap().to_string(), items)
}

fn pod_labels(deployment: &Value) -> &Value {
    &deployment["spec"]["template"]["metadata"]["labels"]
}

/// `docker compose config` where the Compose plugin is installed, else Debian's
/// `docker-compose`; either refuses a file whose interpolation fails.
fn compose_config(args: &[&str]) -> std::process::Output {
    let file = repo("docker-compose.yml").display().to_string();
    let mut all = vec!["-f", file.as_str()];
    all.extend_from_slice(args);
    all.extend_from_slice(&["config", "--quiet"]);
    let plugin = std::process::Command::new("docker")
        .args(["compose", "version"])
        .output()
        .is_ok_and(|o| o.status.success());
    let mut cmd = if plugin {
        let mut cmd = std::process::Command::new("docker");
        cmd.arg("compose");
        cmd
    } else {
        std::process::Command::new("docker-compose")
    };
    cmd.args(&all).env_remove("OPSGUARD_TELEGRAM_TOKEN");
    cmd.output().unwrap_or_else(|e| {
        panic!("docker-compose not runnable ({e}): apt-get install docker-compose, as scripts/test.sh does")
    })
}

#[test]
fn compose_needs_no_bot_token_for_the_stores_nor_for_the_bot_profile() {
    for profile in [&[][..], &["--profile", "bot"][..]] {
        let out = compose_config(profile);
        assert!(out.status.success(), "{profile:?}: {}", text(&out));
    }
}

/// The first number after `prefix` in `text`.
fn major_after(text: &str, prefix: &str) -> u32 {
    let at = text.find(prefix).unwrap_or_else(|| panic!("no {prefix}")) + prefix.len();
    let digits: String = text[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits
        .parse()
        .unwrap_or_else(|_| panic!("no version after {prefix}"))
}

#[test]
fn the_image_dumps_the_compose_postgresql_and_checks_its_own_health() {
    let dockerfile = read("Dockerfile");
    let compose = read("docker-compose.yml");
    let client = major_after(&dockerfile, "postgresql-client-");
    let server = major_after(&compose, "image: postgres:");
    assert!(
        client >= server,
        "pg_dump {client} cannot dump PostgreSQL {server}"
    );
    assert!(dockerfile.contains(r#"CMD ["opsguard", "healthcheck"]"#));
    assert!(!dockerfile.contains("/dev/tcp"));
    assert!(dockerfile.contains(r#"VOLUME ["/var/lib/opsguard"]"#));
    assert!(dockerfile.contains("OPSGUARD__BACKUPS__STORAGE=/var/lib/opsguard/backups"));
    assert!(dockerfile.contains("install -d -o opsguard -g opsguard"));
    assert!(
        dockerfile.contains("\nUSER 10001:10001\n"),
        "numeric for runAsNonRoot"
    );
    let dockerignore = read(".dockerignore");
    let ignored: Vec<&str> = dockerignore.lines().map(str::trim).collect();
    for big in ["target/", ".git"] {
        assert!(ignored.contains(&big), ".dockerignore lacks {big}");
    }
}

#[test]
fn only_the_webhook_is_public_and_only_named_clients_reach_the_pods() {
    let ingress = yaml_documents("deploy/kubernetes/ingress.yaml");
    let ingress = find(&ingress, "Ingress");
    let paths: Vec<&Value> = ingress["spec"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["http"]["paths"].as_array().unwrap())
        .collect();
    assert_eq!(paths.len(), 1, "{paths:?}");
    assert_eq!(paths[0]["path"], "/telegram/webhook");
    assert_eq!(paths[0]["pathType"], "Exact");
    assert_eq!(paths[0]["backend"]["service"]["name"], "opsguard");
    assert!(ingress["spec"]["tls"][0]["hosts"].is_array(), "HTTPS only");

    let deployment = yaml_documents("deploy/kubernetes/deployment.yaml");
    let deployment = find(&deployment, "Deployment");
    let policy = yaml_documents("deploy/kubernetes/networkpolicy.yaml");
    let policy = find(&policy, "NetworkPolicy");
    for (label, value) in policy["spec"]["podSelector"]["matchLabels"]
        .as_object()
        .unwrap()
    {
        assert_eq!(&pod_labels(deployment)[label], value);
    }
    assert_eq!(policy["spec"]["policyTypes"][0], "Ingress");
    let rules = policy["spec"]["ingress"].as_array().unwrap();
    // Every rule names who: an empty `from` would admit the whole cluster.
    for rule in rules {
        let from = rule["from"].as_array().expect("a rule names its clients");
        assert!(!from.is_empty());
    }
}

//! The Kubernetes manifests under `deploy/kubernetes/`: the PrometheusRule is `deploy/alerts.yml`
//! wrapped, so that the two cannot drift (`BLESS=1 cargo test --test api prometheus_rule`
//! rewrites it after a change to the rules).

use std::path::Path;

const RULE_HEADER: &str = "\
# Generated from deploy/alerts.yml by tests/api/deployment.rs (BLESS=1 cargo test --test api
# prometheus_rule): edit the rules there. The README's \"Operate\" section says what to do when
# each fires.
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: stack-sync
spec:
";

/// `deploy/alerts.yml` as the `spec` of a PrometheusRule: its leading comment dropped, the rest
/// indented under `spec:`, whose `groups` is the same as a rules file's.
fn prometheus_rule(alerts: &str) -> String {
    let rules = alerts.lines().skip_while(|line| line.starts_with('#'));
    let indented: Vec<String> = rules
        .map(|line| {
            if line.is_empty() {
                String::new()
            } else {
                format!("  {line}")
            }
        })
        .collect();
    format!("{RULE_HEADER}{}\n", indented.join("\n"))
}

#[test]
fn the_prometheus_rule_is_the_alert_rules_file() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let alerts = std::fs::read_to_string(root.join("deploy/alerts.yml")).unwrap();
    let path = root.join("deploy/kubernetes/base/prometheus-rule.yaml");
    let expected = prometheus_rule(&alerts);
    if std::env::var_os("BLESS").is_some() {
        std::fs::write(&path, &expected).unwrap();
    }
    let found = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        found == expected,
        "{} differs from deploy/alerts.yml: run BLESS=1 cargo test --test api prometheus_rule",
        path.display()
    );
}

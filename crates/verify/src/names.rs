//! Names of everything verify deploys, in one place (manifests, the live runner and checks).

/// verify's namespace (default; `--namespace` changes it).
pub const NAMESPACE: &str = "cniswap-verify";
/// The pod-network prober DaemonSet, one per node.
pub const PROBE: &str = "cniswap-probe";
/// The second pod-network DaemonSet: same-node peer and Service backend.
pub const PEER: &str = "cniswap-probe-peer";
/// The hostNetwork DaemonSet.
pub const HOST: &str = "cniswap-probe-host";
/// The ClusterIP Service (backed by the peer pods, internalTrafficPolicy Local).
pub const SERVICE: &str = "cniswap-probe";
/// The headless Service (the probe pods, not-ready ones included).
pub const HEADLESS: &str = "cniswap-probe-headless";
/// The agents' ServiceAccount (no token is mounted; it has no permissions).
pub const SERVICE_ACCOUNT: &str = "cniswap-probe";
/// The Secret holding the run's agent token (key `token`).
pub const TOKEN_SECRET: &str = "cniswap-probe-token";
/// Pod template annotation that changes with the token, so agents kept from an earlier run
/// (`--keep`) restart with the new one.
pub const TOKEN_ID_ANNOTATION: &str = "cniswap.io/token-id";
/// Label on every object verify creates.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "cniswap-verify");
/// Label naming the agent role (`probe`, `peer`, `host`).
pub const ROLE_LABEL: &str = "cniswap.io/probe-role";
/// Field manager for server-side apply.
pub const FIELD_MANAGER: &str = "cniswap-verify";
/// Default ports: TCP and UDP echo, and the HTTP API.
pub const ECHO_PORT: u16 = 9440;
pub const HTTP_PORT: u16 = 9441;
/// The RBAC a user needs to run verify.
pub const USER_ROLE: &str = "cniswap-verify";

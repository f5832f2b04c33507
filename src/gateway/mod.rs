//! Forward-auth for the gateways teams already run (nginx `auth_request`, Traefik `ForwardAuth`, Caddy
//! `forward_auth`, Envoy `ext_authz`): which proxies are trusted to name the client, and which scope a request
//! needs. The HTTP side is `api::authz`; docs/GATEWAYS.md shows the proxy configurations.

pub mod forwarded;
pub mod routes;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

pub use routes::RouteRule;

/// `[authz]` in keyledger.toml.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthzConfig {
    /// Addresses or CIDRs (`127.0.0.1`, `10.0.0.0/8`) of the proxies whose forwarding headers are believed. Empty
    /// (the default): the client is always the connection's peer and every forwarding header is ignored.
    pub trusted_proxies: Vec<String>,
    /// Method and path patterns mapped to the scope a request needs; the first match wins.
    pub routes: Vec<RouteRule>,
}

/// [`AuthzConfig`], parsed.
#[derive(Clone, Debug, Default)]
pub struct Authz {
    trusted: Vec<IpNet>,
    routes: Vec<RouteRule>,
}

impl AuthzConfig {
    /// Parses the proxy list and checks the route rules; the error names the field.
    pub fn compile(&self) -> Result<Authz, String> {
        let trusted = self
            .trusted_proxies
            .iter()
            .map(|entry| parse_net(entry).ok_or_else(|| {
                format!("authz.trusted_proxies: {entry:?} is not an IP address or CIDR (e.g. 10.0.0.0/8)")
            }))
            .collect::<Result<Vec<_>, _>>()?;
        for (index, rule) in self.routes.iter().enumerate() {
            rule.validate()
                .map_err(|problem| format!("authz.routes[{index}]: {problem}"))?;
        }
        Ok(Authz {
            trusted,
            routes: self.routes.clone(),
        })
    }
}

fn parse_net(entry: &str) -> Option<IpNet> {
    entry
        .parse::<IpNet>()
        .ok()
        .or_else(|| entry.parse::<IpAddr>().ok().map(IpNet::from))
}

impl Authz {
    /// Whether `peer` is a proxy whose forwarding headers are believed.
    pub fn trusts(&self, peer: IpAddr) -> bool {
        let peer = canonical(peer);
        self.trusted.iter().any(|net| net.contains(&peer))
    }

    /// The scope the first matching route rule asks for.
    pub fn scope_for(&self, method: &str, path: &str) -> Option<&str> {
        self.routes
            .iter()
            .find(|rule| rule.matches(method, path))
            .map(|rule| rule.scope.as_str())
    }
}

/// An IPv4 address reached over IPv6 (`::ffff:10.0.0.1`) is that IPv4 address.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

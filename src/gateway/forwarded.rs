//! Who the client is when a proxy asks: the connection's peer, unless that peer is a trusted proxy, in which
//! case the forwarding headers are read from the right, skipping trusted proxies, and the first address that is
//! not one is the client. A client cannot choose its recorded address by sending `X-Forwarded-For` itself: a
//! trusted proxy appends the address it saw, and that address is the rightmost untrusted one.

use super::{canonical, Authz};
use axum::http::HeaderMap;
use std::net::IpAddr;

/// The client's address for a request that arrived from `peer`.
pub fn client_ip(headers: &HeaderMap, peer: IpAddr, authz: &Authz) -> IpAddr {
    let peer = canonical(peer);
    if !authz.trusts(peer) {
        return peer;
    }
    let chain = forwarded_for(headers)
        .or_else(|| x_forwarded_for(headers))
        .or_else(|| x_real_ip(headers).map(|ip| vec![Some(ip)]));
    let Some(chain) = chain else {
        return peer;
    };
    // From the right: every hop a trusted proxy added is skipped; an entry that is not an address ends the walk
    // at the last address known to be good.
    let mut client = peer;
    for hop in chain.iter().rev() {
        match hop {
            Some(ip) => {
                client = canonical(*ip);
                if !authz.trusts(client) {
                    return client;
                }
            }
            None => return client,
        }
    }
    client
}

/// Every `X-Forwarded-For` entry, left to right (`None` for one that is not an address).
fn x_forwarded_for(headers: &HeaderMap) -> Option<Vec<Option<IpAddr>>> {
    let values: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    if values.is_empty() {
        return None;
    }
    Some(
        values
            .iter()
            .flat_map(|v| v.split(','))
            .map(|entry| parse_node(entry.trim()))
            .collect(),
    )
}

/// Every `for=` of RFC 7239 `Forwarded`, left to right.
fn forwarded_for(headers: &HeaderMap) -> Option<Vec<Option<IpAddr>>> {
    let values: Vec<&str> = headers
        .get_all("forwarded")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    if values.is_empty() {
        return None;
    }
    let hops: Vec<Option<IpAddr>> = values
        .iter()
        .flat_map(|v| v.split(','))
        .map(|element| {
            element
                .split(';')
                .filter_map(|pair| pair.split_once('='))
                .find(|(name, _)| name.trim().eq_ignore_ascii_case("for"))
                .and_then(|(_, value)| parse_node(value.trim().trim_matches('"')))
        })
        .collect();
    Some(hops)
}

fn x_real_ip(headers: &HeaderMap) -> Option<IpAddr> {
    headers
        .get("x-real-ip")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_node(v.trim()))
}

/// An address as proxies write it: `203.0.113.7`, `203.0.113.7:4711`, `2001:db8::1`, `[2001:db8::1]:4711`.
fn parse_node(node: &str) -> Option<IpAddr> {
    if let Ok(ip) = node.parse() {
        return Some(ip);
    }
    if let Some(rest) = node.strip_prefix('[') {
        return rest.split_once(']').and_then(|(ip, _)| ip.parse().ok());
    }
    node.rsplit_once(':')
        .filter(|(host, _)| !host.contains(':'))
        .and_then(|(host, _)| host.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::AuthzConfig;

    fn authz(trusted: &[&str]) -> Authz {
        AuthzConfig {
            trusted_proxies: trusted.iter().map(|s| s.to_string()).collect(),
            routes: Vec::new(),
        }
        .compile()
        .expect("valid")
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, value.parse().expect("header value"));
        }
        map
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("an address")
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_sends() {
        let forged = headers(&[("x-forwarded-for", "10.1.1.1"), ("x-real-ip", "10.1.1.1")]);
        assert_eq!(
            client_ip(&forged, ip("203.0.113.9"), &authz(&[])),
            ip("203.0.113.9")
        );
        let proxies = authz(&["127.0.0.1"]);
        assert_eq!(
            client_ip(&forged, ip("203.0.113.9"), &proxies),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn a_forged_entry_left_of_the_proxy_appended_address_is_ignored() {
        let proxies = authz(&["127.0.0.1", "10.0.0.0/8"]);
        // The client sent "192.0.2.1"; the edge proxy appended what it saw; an inner proxy (10.0.0.5) appended
        // the edge's address.
        let h = headers(&[("x-forwarded-for", "192.0.2.1, 198.51.100.4, 10.0.0.5")]);
        assert_eq!(client_ip(&h, ip("127.0.0.1"), &proxies), ip("198.51.100.4"));
        let split = headers(&[
            ("x-forwarded-for", "192.0.2.1"),
            ("x-forwarded-for", "198.51.100.4"),
        ]);
        assert_eq!(
            client_ip(&split, ip("127.0.0.1"), &proxies),
            ip("198.51.100.4")
        );
    }

    #[test]
    fn forwarded_and_x_real_ip_are_read_with_ports_and_brackets() {
        let proxies = authz(&["::1", "127.0.0.0/8"]);
        let h = headers(&[(
            "forwarded",
            r#"for=192.0.2.60;proto=http, for="[2001:db8::7]:4711""#,
        )]);
        assert_eq!(client_ip(&h, ip("::1"), &proxies), ip("2001:db8::7"));
        let h = headers(&[("x-real-ip", "198.51.100.8")]);
        assert_eq!(client_ip(&h, ip("127.0.0.1"), &proxies), ip("198.51.100.8"));
        let h = headers(&[("x-forwarded-for", "198.51.100.8:5555")]);
        assert_eq!(
            client_ip(&h, ip("::ffff:127.0.0.1"), &proxies),
            ip("198.51.100.8")
        );
    }

    #[test]
    fn garbage_stops_the_walk_at_the_last_good_hop() {
        let proxies = authz(&["127.0.0.1"]);
        let h = headers(&[("x-forwarded-for", "198.51.100.8, unknown")]);
        assert_eq!(client_ip(&h, ip("127.0.0.1"), &proxies), ip("127.0.0.1"));
        let none = headers(&[]);
        assert_eq!(client_ip(&none, ip("127.0.0.1"), &proxies), ip("127.0.0.1"));
    }
}

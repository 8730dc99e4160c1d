//! Rate-limit settings (SPEC section 3): `RATE_LIMIT_USER` / `RATE_LIMIT_TENANT` as `N/unit`,
//! `RATE_LIMIT_PER_MINUTE` and `RATE_LIMIT_BURST` for public routes, `RATE_LIMIT_WHITELIST_IPS`
//! and `TRUSTED_PROXIES` (IPs or CIDR blocks).

use std::net::IpAddr;
use std::time::Duration;

use crate::ConfigError;

/// A GCRA budget: up to `burst` requests at once, then one per `interval`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Limit {
    pub burst: u32,
    pub interval: Duration,
}

impl Limit {
    /// `n` requests per `period`, all of which may come at once.
    pub fn per(n: u32, period: Duration) -> Self {
        let n = n.max(1);
        Self {
            burst: n,
            interval: period / n,
        }
    }

    /// Parses `60/minute` (units: second, minute, hour, day; `s`, `m`, `h`, `d` too).
    pub fn parse(raw: &str) -> Option<Self> {
        let (count, unit) = raw.trim().split_once('/')?;
        let count: u32 = count.trim().parse().ok().filter(|n| *n > 0)?;
        let seconds = match unit.trim().to_ascii_lowercase().as_str() {
            "s" | "sec" | "second" => 1,
            "m" | "min" | "minute" => 60,
            "h" | "hour" => 3600,
            "d" | "day" => 86_400,
            _ => return None,
        };
        Some(Self::per(count, Duration::from_secs(seconds)))
    }
}

/// An IP network: an address and a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    pub fn parse(raw: &str) -> Option<Self> {
        let raw = raw.trim();
        let (addr, prefix) = match raw.split_once('/') {
            Some((addr, prefix)) => (addr.parse::<IpAddr>().ok()?, prefix.parse::<u8>().ok()?),
            None => {
                let addr = raw.parse::<IpAddr>().ok()?;
                (addr, if addr.is_ipv4() { 32 } else { 128 })
            }
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        (prefix <= max).then_some(Self { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

#[derive(Debug, Clone)]
pub struct RateLimitConfig {
    pub user: Limit,
    pub tenant: Limit,
    /// `RATE_LIMIT_ASK` (`10/minute`): Ask Otto questions per user.
    pub ask: Limit,
    pub public: Limit,
    pub whitelist: Vec<IpNet>,
    pub trusted_proxies: Vec<IpNet>,
}

impl RateLimitConfig {
    pub(crate) fn from_lookup(get: &impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let limit = |name: &'static str, default: &str| {
            let raw = get(name)
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| default.to_owned());
            Limit::parse(&raw).ok_or_else(|| ConfigError::Invalid {
                name,
                reason: format!("'{raw}' is not N/second|minute|hour|day"),
            })
        };
        let number = |name: &'static str, default: u32| -> Result<u32, ConfigError> {
            match get(name).filter(|v| !v.is_empty()) {
                None => Ok(default),
                Some(raw) => raw
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or(ConfigError::Invalid {
                        name,
                        reason: format!("'{raw}' is not a positive number"),
                    }),
            }
        };
        let networks = |name: &'static str| -> Result<Vec<IpNet>, ConfigError> {
            get(name)
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(|v| {
                    IpNet::parse(v).ok_or(ConfigError::Invalid {
                        name,
                        reason: format!("'{v}' is not an IP or CIDR block"),
                    })
                })
                .collect()
        };
        let per_minute = number("RATE_LIMIT_PER_MINUTE", 120)?;
        Ok(Self {
            user: limit("RATE_LIMIT_USER", "60/minute")?,
            tenant: limit("RATE_LIMIT_TENANT", "600/minute")?,
            ask: limit("RATE_LIMIT_ASK", "10/minute")?,
            public: Limit {
                burst: number("RATE_LIMIT_BURST", 20)?,
                interval: Duration::from_secs(60) / per_minute,
            },
            whitelist: networks("RATE_LIMIT_WHITELIST_IPS")?,
            trusted_proxies: networks("TRUSTED_PROXIES")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_parse() {
        assert_eq!(
            Limit::parse("60/minute"),
            Some(Limit {
                burst: 60,
                interval: Duration::from_secs(1)
            })
        );
        assert_eq!(
            Limit::parse("10/s"),
            Some(Limit {
                burst: 10,
                interval: Duration::from_millis(100)
            })
        );
        assert_eq!(Limit::parse("0/minute"), None);
        assert_eq!(Limit::parse("lots"), None);
    }

    #[test]
    fn networks_match() -> Result<(), &'static str> {
        let net = IpNet::parse("10.1.0.0/16").ok_or("parse")?;
        assert!(net.contains("10.1.200.3".parse().map_err(|_| "ip")?));
        assert!(!net.contains("10.2.0.1".parse().map_err(|_| "ip")?));
        let single = IpNet::parse("::1").ok_or("parse")?;
        assert!(single.contains("::1".parse().map_err(|_| "ip")?));
        assert!(IpNet::parse("10.0.0.0/40").is_none());
        Ok(())
    }
}

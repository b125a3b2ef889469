//! An IPv4 address with its prefix length (`10.0.2.15/24`), and dotted netmasks
//! (`255.255.255.0`) turned into prefix lengths.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// An interface address: the host's address and the length of its network's prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Cidr {
    pub addr: Ipv4Addr,
    pub prefix: u8,
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// Why a string is not an address with a prefix length, or a mask not a netmask.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CidrError {
    #[error("{0:?} has no prefix length (write it as ADDRESS/LENGTH, e.g. 10.0.2.15/24)")]
    NoPrefix(String),
    #[error("{0:?} is not an IPv4 address")]
    Address(String),
    #[error("{0:?}: the prefix length must be a number from 0 to 32")]
    Prefix(String),
    #[error("{0:?} is not a netmask (contiguous ones, then zeros, e.g. 255.255.255.0)")]
    Netmask(String),
}

impl FromStr for Cidr {
    type Err = CidrError;

    fn from_str(s: &str) -> Result<Cidr, CidrError> {
        let (addr, prefix) = s
            .split_once('/')
            .ok_or_else(|| CidrError::NoPrefix(s.to_string()))?;
        let addr = addr
            .parse::<Ipv4Addr>()
            .map_err(|_| CidrError::Address(s.to_string()))?;
        let prefix = prefix
            .parse::<u8>()
            .ok()
            .filter(|p| *p <= 32)
            .ok_or_else(|| CidrError::Prefix(s.to_string()))?;
        Ok(Cidr { addr, prefix })
    }
}

/// The prefix length of a dotted netmask; an error for a mask whose ones are not contiguous.
pub fn mask_prefix(mask: Ipv4Addr) -> Result<u8, CidrError> {
    let bits = u32::from(mask);
    let ones = bits.leading_ones();
    if bits.count_ones() != ones {
        return Err(CidrError::Netmask(mask.to_string()));
    }
    // At most 32: fits.
    Ok(ones as u8)
}

/// The prefix length of an address's class (A: /8, B: /16, C: /24), what the kernel's `ip=`
/// uses when the netmask is left empty.
pub fn class_prefix(addr: Ipv4Addr) -> u8 {
    match addr.octets()[0] {
        0..=127 => 8,
        128..=191 => 16,
        _ => 24,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        let c: Cidr = "10.0.2.15/24".parse().unwrap();
        assert_eq!(c.addr, Ipv4Addr::new(10, 0, 2, 15));
        assert_eq!(c.prefix, 24);
        assert_eq!(c.to_string(), "10.0.2.15/24");
        assert_eq!(
            "10.0.2.15".parse::<Cidr>().unwrap_err(),
            CidrError::NoPrefix("10.0.2.15".into())
        );
        assert_eq!(
            "10.0.2/24".parse::<Cidr>().unwrap_err(),
            CidrError::Address("10.0.2/24".into())
        );
        assert_eq!(
            "10.0.2.15/33".parse::<Cidr>().unwrap_err(),
            CidrError::Prefix("10.0.2.15/33".into())
        );
        assert!("fe80::1/64".parse::<Cidr>().is_err());
    }

    #[test]
    fn netmasks() {
        assert_eq!(mask_prefix(Ipv4Addr::new(255, 255, 255, 0)), Ok(24));
        assert_eq!(mask_prefix(Ipv4Addr::new(255, 255, 240, 0)), Ok(20));
        assert_eq!(mask_prefix(Ipv4Addr::new(0, 0, 0, 0)), Ok(0));
        assert_eq!(mask_prefix(Ipv4Addr::BROADCAST), Ok(32));
        assert!(mask_prefix(Ipv4Addr::new(255, 0, 255, 0)).is_err());
        assert_eq!(class_prefix(Ipv4Addr::new(10, 1, 2, 3)), 8);
        assert_eq!(class_prefix(Ipv4Addr::new(172, 16, 0, 1)), 16);
        assert_eq!(class_prefix(Ipv4Addr::new(192, 168, 1, 1)), 24);
    }
}

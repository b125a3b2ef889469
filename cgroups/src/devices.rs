//! Device access: which device nodes a unit's processes may open or create. On v1 the
//! `devices` controller's allow list; on v2 an eBPF program of type
//! `BPF_PROG_TYPE_CGROUP_DEVICE` attached to the unit's cgroup, as runc and crun do.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use crate::detect::Hierarchy;
use crate::fs::{write, write_each};
use crate::unit::UnitCgroup;
use crate::CgroupError;

/// One allowed device: `kind` 'c' or 'b' (or 'a' for both), `None` numbers mean any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRule {
    /// 'c' (character), 'b' (block) or 'a' (both).
    pub kind: char,
    /// The major number; `None` for any.
    pub major: Option<u32>,
    /// The minor number; `None` for any.
    pub minor: Option<u32>,
    /// Subset of "rwm" (read, write, mknod).
    pub access: String,
}

impl DeviceRule {
    /// A rule; `access` is a subset of "rwm".
    pub fn new(kind: char, major: Option<u32>, minor: Option<u32>, access: &str) -> DeviceRule {
        DeviceRule {
            kind,
            major,
            minor,
            access: access.to_string(),
        }
    }

    /// The v1 `devices.allow` line: `c 1:3 rwm`, `c *:* m`.
    pub fn v1_line(&self) -> String {
        let n = |v: Option<u32>| v.map_or("*".to_string(), |v| v.to_string());
        format!(
            "{} {}:{} {}",
            self.kind,
            n(self.major),
            n(self.minor),
            self.access
        )
    }
}

/// What a container may use by default: creating any node (mknod) but opening only
/// null, zero, full, random, urandom, tty, console, ptmx and the pts.
pub fn default_rules() -> Vec<DeviceRule> {
    let rwm = "rwm";
    vec![
        DeviceRule::new('c', None, None, "m"),
        DeviceRule::new('b', None, None, "m"),
        DeviceRule::new('c', Some(1), Some(3), rwm),
        DeviceRule::new('c', Some(1), Some(5), rwm),
        DeviceRule::new('c', Some(1), Some(7), rwm),
        DeviceRule::new('c', Some(1), Some(8), rwm),
        DeviceRule::new('c', Some(1), Some(9), rwm),
        DeviceRule::new('c', Some(5), Some(0), rwm),
        DeviceRule::new('c', Some(5), Some(1), rwm),
        DeviceRule::new('c', Some(5), Some(2), rwm),
        DeviceRule::new('c', Some(136), None, rwm),
    ]
}

impl UnitCgroup {
    /// Deny every device but `rules`.
    pub fn restrict_devices(&self, rules: &[DeviceRule]) -> Result<(), CgroupError> {
        let v1 = self.dirs().iter().find(
            |d| matches!(&d.hierarchy, Hierarchy::V1 { controllers } if controllers.iter().any(|c| c == "devices")),
        );
        if let Some(d) = v1 {
            write(&d.path.join("devices.deny"), "a")?;
            let lines: Vec<String> = rules.iter().map(DeviceRule::v1_line).collect();
            return write_each(
                &d.path.join("devices.allow"),
                lines.iter().map(String::as_str),
            );
        }
        if let Some(d) = self
            .dirs()
            .iter()
            .find(|d| d.hierarchy == Hierarchy::Unified)
        {
            if self.version() == crate::Version::V2 {
                return attach_program(&d.path, &program(rules));
            }
        }
        Ok(())
    }
}

// eBPF encoding (linux/bpf.h).
const LDX_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
const AND_K: u8 = 0x57; // BPF_ALU64 | BPF_AND | BPF_K
const RSH_K: u8 = 0x77; // BPF_ALU64 | BPF_RSH | BPF_K
const MOV_X: u8 = 0xbf; // BPF_ALU64 | BPF_MOV | BPF_X
const MOV_K: u8 = 0xb7; // BPF_ALU64 | BPF_MOV | BPF_K
const JNE_K: u8 = 0x55; // BPF_JMP | BPF_JNE | BPF_K
const EXIT: u8 = 0x95; // BPF_JMP | BPF_EXIT

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> [u8; 8] {
    let mut b = [0u8; 8];
    b[0] = code;
    b[1] = (src << 4) | (dst & 0x0f);
    b[2..4].copy_from_slice(&off.to_le_bytes());
    b[4..8].copy_from_slice(&imm.to_le_bytes());
    b
}

/// The program: r2 = access, r3 = type, r4 = major, r5 = minor (from
/// `struct bpf_cgroup_dev_ctx`); each rule a block that jumps to the next on mismatch and
/// returns 1 on match; 0 at the end.
pub fn program(rules: &[DeviceRule]) -> Vec<[u8; 8]> {
    let mut p = vec![
        insn(LDX_W, 2, 1, 0, 0),
        insn(MOV_X, 3, 2, 0, 0),
        insn(AND_K, 3, 0, 0, 0xffff),
        insn(RSH_K, 2, 0, 0, 16),
        insn(LDX_W, 4, 1, 4, 0),
        insn(LDX_W, 5, 1, 8, 0),
    ];
    for r in rules {
        let mut block = Vec::new();
        let ty = match r.kind {
            'b' => Some(1),
            'c' => Some(2),
            _ => None,
        };
        let mut mask = 0;
        for ch in r.access.chars() {
            mask |= match ch {
                'm' => 1,
                'r' => 2,
                'w' => 4,
                _ => 0,
            };
        }
        // Jumps are patched to the block's end once its length is known.
        if let Some(t) = ty {
            block.push((JNE_K, 3u8, t));
        }
        if mask != 7 {
            block.push((MOV_X, 1, 2));
            block.push((AND_K, 1, !mask & 7));
            block.push((JNE_K, 1, 0));
        }
        if let Some(m) = r.major {
            block.push((JNE_K, 4, m as i32));
        }
        if let Some(m) = r.minor {
            block.push((JNE_K, 5, m as i32));
        }
        let len = block.len() + 2;
        for (i, (code, dst, imm)) in block.iter().enumerate() {
            match *code {
                JNE_K => p.push(insn(JNE_K, *dst, 0, (len - i - 1) as i16, *imm)),
                MOV_X => p.push(insn(MOV_X, *dst, *imm as u8, 0, 0)),
                c => p.push(insn(c, *dst, 0, 0, *imm)),
            }
        }
        p.push(insn(MOV_K, 0, 0, 0, 1));
        p.push(insn(EXIT, 0, 0, 0, 0));
    }
    p.push(insn(MOV_K, 0, 0, 0, 0));
    p.push(insn(EXIT, 0, 0, 0, 0));
    p
}

fn bpf(cmd: libc::c_long, attr: &mut [u8; 128]) -> io::Result<i64> {
    // SAFETY: bpf(2) reads (and for some commands writes) the attribute buffer, which is
    // large enough for every command used here.
    let rc = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr.as_mut_ptr(), attr.len() as u32) };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// Load `prog` and attach it to the cgroup at `dir`.
fn attach_program(dir: &Path, prog: &[[u8; 8]]) -> Result<(), CgroupError> {
    let err = |source: io::Error| CgroupError::Write {
        path: dir.to_path_buf(),
        source,
    };
    let code: Vec<u8> = prog.iter().flatten().copied().collect();
    let license = b"GPL\0";
    let mut attr = [0u8; 128];
    attr[0..4].copy_from_slice(&15u32.to_le_bytes()); // BPF_PROG_TYPE_CGROUP_DEVICE
    attr[4..8].copy_from_slice(&(prog.len() as u32).to_le_bytes());
    attr[8..16].copy_from_slice(&(code.as_ptr() as u64).to_le_bytes());
    attr[16..24].copy_from_slice(&(license.as_ptr() as u64).to_le_bytes());
    // BPF_PROG_LOAD. The verifier gives up with EAGAIN when a signal is pending for the
    // caller (the daemon gets a SIGCHLD at any time); it is delivered on the way out, and
    // the load tried again, as libbpf does.
    let mut attempts = 5;
    let fd = loop {
        match bpf(5, &mut attr) {
            Err(e) if e.raw_os_error() == Some(libc::EAGAIN) && attempts > 1 => attempts -= 1,
            other => break other.map_err(err)?,
        }
    };
    // SAFETY: bpf(2) returned a new descriptor that nothing else owns.
    let prog_fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    let cg = std::fs::File::open(dir).map_err(err)?;
    let mut attr = [0u8; 128];
    attr[0..4].copy_from_slice(&(cg.as_raw_fd() as u32).to_le_bytes());
    attr[4..8].copy_from_slice(&(prog_fd.as_raw_fd() as u32).to_le_bytes());
    attr[8..12].copy_from_slice(&6u32.to_le_bytes()); // BPF_CGROUP_DEVICE
    attr[12..16].copy_from_slice(&2u32.to_le_bytes()); // BPF_F_ALLOW_MULTI
    bpf(8, &mut attr).map_err(err)?; // BPF_PROG_ATTACH
    Ok(())
}

/// Skipping out loud, as every test crate of the workspace does.
#[cfg(test)]
#[path = "../../integration/skip.rs"]
mod skip;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_lines() {
        assert_eq!(
            DeviceRule::new('c', Some(1), Some(3), "rwm").v1_line(),
            "c 1:3 rwm"
        );
        assert_eq!(DeviceRule::new('b', None, None, "m").v1_line(), "b *:* m");
    }

    #[test]
    fn program_shape() {
        let p = program(&default_rules());
        // Every block ends in `r0 = 1; exit`, the program in `r0 = 0; exit`.
        assert_eq!(p.last().unwrap()[0], EXIT);
        assert_eq!(p[p.len() - 2], insn(MOV_K, 0, 0, 0, 0));
        // All jumps land inside the program.
        for (i, ins) in p.iter().enumerate() {
            if ins[0] == JNE_K {
                let off = i16::from_le_bytes([ins[2], ins[3]]) as usize;
                assert!(i + off + 1 < p.len());
            }
        }
    }

    /// The kernel's verifier accepts the program (needs root; attaches nothing).
    #[test]
    fn the_kernel_loads_the_program() {
        if !super::skip::need_root() {
            return;
        }
        let code: Vec<u8> = program(&default_rules())
            .iter()
            .flatten()
            .copied()
            .collect();
        let license = b"GPL\0";
        let mut attr = [0u8; 128];
        attr[0..4].copy_from_slice(&15u32.to_le_bytes());
        attr[4..8].copy_from_slice(&((code.len() / 8) as u32).to_le_bytes());
        attr[8..16].copy_from_slice(&(code.as_ptr() as u64).to_le_bytes());
        attr[16..24].copy_from_slice(&(license.as_ptr() as u64).to_le_bytes());
        let fd = bpf(5, &mut attr).expect("BPF_PROG_LOAD");
        // SAFETY: closing the descriptor just returned.
        unsafe { libc::close(fd as i32) };
    }
}

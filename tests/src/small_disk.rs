//! A small file system of a test's own: a tmpfs mounted on a scratch directory, so that a disk
//! fills up for real (ENOSPC). Mounting needs root (or CAP_SYS_ADMIN); where it is refused the
//! test must not pass quietly as if it had run, so [`SmallDisk::mount`] says so loudly and
//! the caller returns early.
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub struct SmallDisk {
    dir: PathBuf,
}

impl SmallDisk {
    /// Mounts a tmpfs of `mib` MiB on `dir` (created if absent); `None`, after a loud notice
    /// on stdout and stderr, where that is not possible.
    pub fn mount(dir: &Path, mib: u32, test: &str) -> Option<SmallDisk> {
        std::fs::create_dir_all(dir).expect("create mount point");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o"])
            .arg(format!("size={mib}m,mode=0700"))
            .arg("tmpfs")
            .arg(dir)
            .stdin(Stdio::null())
            .output();
        match out {
            Ok(o) if o.status.success() => Some(SmallDisk {
                dir: dir.to_path_buf(),
            }),
            other => {
                let why = match other {
                    Ok(o) => String::from_utf8_lossy(&o.stderr).trim().to_string(),
                    Err(e) => e.to_string(),
                };
                let notice = format!(
                    "\n!!!!!!!!!!\n!!! {test}: SKIPPED, NOT RUN: cannot mount a {mib} MiB tmpfs on {} \
                     ({why}). It needs root or CAP_SYS_ADMIN; run it where mount works.\n!!!!!!!!!!\n",
                    dir.display()
                );
                println!("{notice}");
                eprintln!("{notice}");
                None
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Bytes free for an unprivileged writer.
    pub fn free_bytes(&self) -> u64 {
        rustix::fs::statvfs(&self.dir)
            .map(|s| s.f_bavail.saturating_mul(s.f_frsize))
            .unwrap_or(0)
    }

    /// Writes a file at `path` until the disk is full: afterwards not one more byte fits.
    pub fn fill(&self, path: &Path) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .expect("create filler");
        let block = vec![0x5Au8; 64 << 10];
        let mut chunk = block.len();
        while chunk > 0 {
            match f.write(&block[..chunk]) {
                Ok(0) => chunk /= 2,
                Ok(_) => {}
                Err(_) => chunk /= 2,
            }
        }
        let _ = f.sync_all();
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(&self.dir)
            .stdin(Stdio::null())
            .status();
    }
}

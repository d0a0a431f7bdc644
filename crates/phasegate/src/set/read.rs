//! Reading a migration set's files safely: only regular files, inside the
//! set's folder (a symlink may point elsewhere in the folder, never out of
//! it), none larger than `MAX_FILE_BYTES`. Each is checked before it is
//! opened, so a FIFO or a device is never read (and, should one be swapped
//! in after the check, it is opened without blocking and refused on its
//! open handle), and read through the cap. Text must be UTF-8, else an
//! error names the line where it stops being so.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::error::{Error, LoadError, Location, Result};

/// The largest file a set may hold: 64 MiB, room for a migration of
/// generated data many times over (10 MB loads in well under a second),
/// and a bound on what a mistaken or hostile path can make phasegate read.
pub const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// A set's folder, resolved once: every file the set reads must be inside it.
pub(crate) struct Folder {
    root: PathBuf,
}

impl Folder {
    pub fn new(dir: &Path) -> Result<Folder> {
        let root = dir.canonicalize().map_err(|source| Error::Io { path: dir.to_path_buf(), source })?;
        Ok(Folder { root })
    }

    /// The text of `path`, which must resolve to a regular file inside the folder.
    pub fn read(&self, path: &Path) -> Result<String> {
        let real = path.canonicalize().map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
        if !real.starts_with(&self.root) {
            return Err(refuse(path, LoadError::OutsideFolder { real }));
        }
        read_regular(path)
    }
}

/// The entries of a folder.
pub(crate) fn entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let io = |e| Error::Io { path: dir.to_path_buf(), source: e };
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        out.push(entry.map_err(io)?.path());
    }
    Ok(out)
}

/// The text of `path` (a symlink is followed), which must be a regular file
/// of at most `MAX_FILE_BYTES`, both checked before it is opened.
pub(crate) fn read_regular(path: &Path) -> Result<String> {
    let io = |source| Error::Io { path: path.to_path_buf(), source };
    let meta = std::fs::metadata(path).map_err(io)?;
    check(path, &meta)?;
    let mut file = open_nonblocking(path).map_err(io)?;
    check(path, &file.metadata().map_err(io)?)?;
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.by_ref().take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes).map_err(io)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(too_large(path, bytes.len() as u64));
    }
    String::from_utf8(bytes).map_err(|e| {
        let valid = e.utf8_error().valid_up_to();
        let line = e.as_bytes()[..valid].iter().filter(|&&b| b == b'\n').count() + 1;
        Error::Load { at: Location::line(path, line), kind: LoadError::NotUtf8 }
    })
}

fn refuse(path: &Path, kind: LoadError) -> Error {
    Error::Load { at: Location::file(path), kind }
}

fn too_large(path: &Path, bytes: u64) -> Error {
    refuse(path, LoadError::TooLarge { bytes, cap_mib: MAX_FILE_BYTES / (1024 * 1024) })
}

/// A regular file within the size cap, or the error that says what it is.
fn check(path: &Path, meta: &std::fs::Metadata) -> Result<()> {
    if !meta.is_file() {
        return Err(refuse(path, LoadError::NotRegularFile { what: kind(&meta.file_type()) }));
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(too_large(path, meta.len()));
    }
    Ok(())
}

fn kind(t: &std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "a FIFO";
        }
        if t.is_socket() {
            return "a socket";
        }
        if t.is_char_device() || t.is_block_device() {
            return "a device";
        }
    }
    if t.is_dir() {
        "a folder"
    } else {
        "not a file"
    }
}

#[cfg(unix)]
fn open_nonblocking(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(path)
}

#[cfg(not(unix))]
fn open_nonblocking(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::File::open(path)
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn err(folder: &Folder, path: &Path, dir: &Path) -> String {
        folder.read(path).unwrap_err().to_string().replace(&format!("{}/", dir.display()), "")
    }

    #[test]
    fn only_regular_files_inside_the_folder_within_the_cap_are_read() {
        let outside = tempfile::tempdir().unwrap();
        let d = tempfile::tempdir().unwrap();
        let (o, p) = (outside.path(), d.path());
        std::fs::write(o.join("secret.sql"), "DROP TABLE victim;").unwrap();
        std::fs::write(p.join("real.sql"), "SELECT 1;").unwrap();
        let folder = Folder::new(p).unwrap();
        assert_eq!(folder.read(&p.join("real.sql")).unwrap(), "SELECT 1;");

        symlink(p.join("real.sql"), p.join("inside.sql")).unwrap();
        assert_eq!(folder.read(&p.join("inside.sql")).unwrap(), "SELECT 1;", "a symlink within the set is followed");

        symlink(o.join("secret.sql"), p.join("escape.sql")).unwrap();
        let e = err(&folder, &p.join("escape.sql"), p);
        assert!(e.starts_with("escape.sql: resolves to ") && e.ends_with("outside the set's folder; a set reads only files inside its folder (copy the file in)"), "{e}");

        symlink("/dev/zero", p.join("zero.sql")).unwrap();
        assert!(err(&folder, &p.join("zero.sql"), p).starts_with("zero.sql: resolves to /dev/zero, outside the set's folder"));

        let fifo = p.join("fifo.sql");
        assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        assert_eq!(err(&folder, &fifo, p), "fifo.sql: is a FIFO, not a regular file");
        symlink(&fifo, p.join("to_fifo.sql")).unwrap();
        assert_eq!(err(&folder, &p.join("to_fifo.sql"), p), "to_fifo.sql: is a FIFO, not a regular file");

        let big = std::fs::File::create(p.join("big.sql")).unwrap();
        big.set_len(MAX_FILE_BYTES + 1).unwrap(); // sparse: nothing is written
        assert_eq!(err(&folder, &p.join("big.sql"), p), format!("big.sql: is {} bytes, more than a set's file may hold (64 MiB)", MAX_FILE_BYTES + 1));

        std::fs::create_dir(p.join("dir.sql")).unwrap();
        assert_eq!(err(&folder, &p.join("dir.sql"), p), "dir.sql: is a folder, not a regular file");
        assert!(err(&folder, &p.join("missing.sql"), p).starts_with("missing.sql: No such file"));
    }
}

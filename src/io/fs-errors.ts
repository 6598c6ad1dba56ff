// One wording for file-system failures, so every "cannot read" names the path and says plainly what is wrong
// ("no such file", "is a folder") instead of a raw errno string or a `FILE:0:` location.

/** The reason part of a file-system error: `no such file`, `is a folder, not a file`, ... */
export function fsReason(e: unknown): string {
  const code = (e as NodeJS.ErrnoException | null)?.code;
  switch (code) {
    case 'ENOENT':
      return 'no such file or folder';
    case 'EISDIR':
      return 'is a folder, not a file';
    case 'ENOTDIR':
      return 'a part of the path is not a folder';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'EROFS':
      return 'read-only file system';
    case 'ENOSPC':
      return 'no space left on the device';
    default:
      return (e as Error)?.message ?? String(e);
  }
}

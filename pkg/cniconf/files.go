package cniconf

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// readFile returns a file's bytes and mode.
func readFile(path string) ([]byte, fs.FileMode, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, 0, fmt.Errorf("reading %s: %w", path, err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, 0, fmt.Errorf("reading %s: %w", path, err)
	}
	return data, info.Mode().Perm(), nil
}

// writeFileAtomic replaces path with data through a temporary file in the same directory and a rename, so
// a runtime reading the directory sees the old file or the new one, never half of one. The temporary
// file's name ends in .tmp, which runtimes do not load. An existing file's owner is kept.
func writeFileAtomic(path string, data []byte, mode fs.FileMode) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // fails harmlessly once renamed
	if err := writeAndSync(tmp, data, mode); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if info, err := os.Stat(path); err == nil {
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			_ = os.Chown(tmp.Name(), int(st.Uid), int(st.Gid))
		}
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return syncDir(dir)
}

func writeAndSync(f *os.File, data []byte, mode fs.FileMode) error {
	_, err := f.Write(data)
	if err == nil {
		err = f.Chmod(mode)
	}
	if err == nil {
		err = f.Sync()
	}
	if closeErr := f.Close(); err == nil {
		err = closeErr
	}
	return err
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("syncing %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("syncing %s: %w", dir, err)
	}
	return nil
}

// InstallBinary copies the plugin binary src into binDir as egressgw-cni (mode 0755), atomically, so a
// runtime never executes half a binary. It reports whether it wrote: an identical binary is left alone.
func InstallBinary(src, binDir string) (bool, error) {
	data, err := os.ReadFile(src)
	if err != nil {
		return false, fmt.Errorf("reading the plugin binary %s: %w", src, err)
	}
	dst := filepath.Join(binDir, PluginType)
	if current, err := os.ReadFile(dst); err == nil && bytes.Equal(current, data) {
		return false, nil
	}
	if err := writeFileAtomic(dst, data, 0o755); err != nil {
		return false, fmt.Errorf("installing the plugin binary: %w", err)
	}
	return true, nil
}

// RemoveBinary deletes binDir/egressgw-cni; an absent binary is not an error.
func RemoveBinary(binDir string) error {
	err := os.Remove(filepath.Join(binDir, PluginType))
	if err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("removing the plugin binary: %w", err)
	}
	return nil
}

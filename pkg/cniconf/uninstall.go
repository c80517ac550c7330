package cniconf

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Uninstall takes the entry out of every configuration file in dir that has it (the file the runtime uses
// may have changed since Install) and puts converted .conf files back byte for byte. It returns what it
// changed; nothing when there was nothing to remove.
func Uninstall(dir string) ([]Change, error) {
	files, err := configFiles(dir)
	if err != nil {
		return nil, err
	}
	var changes []Change
	var errs []error
	for _, name := range files {
		if !strings.HasSuffix(name, ".conflist") {
			continue
		}
		change, err := uninstallFrom(dir, name)
		if err != nil {
			errs = append(errs, err)
		} else if change.Action != Unchanged {
			changes = append(changes, change)
		}
	}
	restored, err := restoreOrphanBackups(dir)
	changes = append(changes, restored...)
	return changes, errors.Join(append(errs, err)...)
}

// uninstallFrom removes the entry from one conflist: a list that Install made from a .conf is replaced by
// that .conf, any other list loses exactly the bytes Install added.
func uninstallFrom(dir, name string) (Change, error) {
	path := filepath.Join(dir, name)
	data, mode, err := readFile(path)
	if err != nil {
		return Change{}, err
	}
	arr, err := locatePlugins(data)
	if err != nil || indexOf(arr.types, PluginType) < 0 {
		return Change{File: path, Action: Unchanged}, nil // not a list we touched
	}
	base := strings.TrimSuffix(name, ".conflist")
	for _, ext := range []string{".conf", ".json"} {
		confPath := filepath.Join(dir, base+ext)
		if _, err := os.Stat(backupPath(confPath)); err == nil {
			if err := restoreBackup(confPath); err != nil {
				return Change{}, err
			}
			if err := os.Remove(path); err != nil {
				return Change{}, fmt.Errorf("removing %s, made from %s: %w", path, confPath, err)
			}
			return Change{File: confPath, Action: Restored}, nil
		}
	}
	without, _, err := removePlugins(data, PluginType)
	if err != nil {
		return Change{}, fmt.Errorf("%s: %w", path, err)
	}
	if err := writeFileAtomic(path, without, mode); err != nil {
		return Change{}, err
	}
	return Change{File: path, Action: Removed}, nil
}

// restoreBackup puts a converted .conf back unless its CNI wrote a new one meanwhile, then drops the backup.
func restoreBackup(confPath string) error {
	backup := backupPath(confPath)
	if _, err := os.Stat(confPath); errors.Is(err, os.ErrNotExist) {
		data, mode, err := readFile(backup)
		if err != nil {
			return err
		}
		if err := writeFileAtomic(confPath, data, mode); err != nil {
			return err
		}
	}
	if err := os.Remove(backup); err != nil {
		return fmt.Errorf("removing the backup %s: %w", backup, err)
	}
	return nil
}

// restoreOrphanBackups handles backups whose conflist is gone (deleted by hand or by the CNI).
func restoreOrphanBackups(dir string) ([]Change, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", dir, err)
	}
	var changes []Change
	var errs []error
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, ".") || !strings.HasSuffix(name, backupSuffix) {
			continue
		}
		confPath := filepath.Join(dir, strings.TrimSuffix(strings.TrimPrefix(name, "."), backupSuffix))
		if err := restoreBackup(confPath); err != nil {
			errs = append(errs, err)
			continue
		}
		changes = append(changes, Change{File: confPath, Action: Restored})
	}
	return changes, errors.Join(errs...)
}

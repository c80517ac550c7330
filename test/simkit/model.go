package simkit

import (
	"fmt"
	"os"

	"sigs.k8s.io/yaml"
)

// ParseModel parses a simulator's model (YAML or JSON); unknown fields are an error so that typos do not
// pass silently.
func ParseModel[M any](data []byte) (M, error) {
	var m M
	if err := yaml.UnmarshalStrict(data, &m); err != nil {
		var zero M
		return zero, fmt.Errorf("model: %w", err)
	}
	return m, nil
}

// LoadModel reads and parses a model file; a parse error names the file.
func LoadModel[M any](path string) (M, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		var zero M
		return zero, err
	}
	m, err := ParseModel[M](data)
	if err != nil {
		return m, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

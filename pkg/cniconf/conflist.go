package cniconf

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// span is a byte range [start, end) of a JSON value in a file.
type span struct{ start, end int }

// pluginsArray locates, in a conflist's bytes, the value of every element of the top-level "plugins" array
// and the offset just after its '['. It reads tokens and never re-marshals, so callers edit the file
// textually and keep every other byte.
type pluginsArray struct {
	open     int // offset just after '['
	elements []span
	types    []string // each element's "type"
}

func locatePlugins(data []byte) (*pluginsArray, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, errors.New("the file is not a JSON object")
	}
	var found *pluginsArray
	for dec.More() {
		keyTok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("reading a key: %w", err)
		}
		if key, _ := keyTok.(string); key != "plugins" {
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return nil, fmt.Errorf("reading the value of %q: %w", keyTok, err)
			}
			continue
		}
		if found != nil {
			return nil, errors.New(`the file has two "plugins" keys`)
		}
		if found, err = readPluginsArray(dec); err != nil {
			return nil, err
		}
	}
	if found == nil {
		return nil, errors.New(`the file has no "plugins" array`)
	}
	return found, nil
}

func readPluginsArray(dec *json.Decoder) (*pluginsArray, error) {
	if tok, err := dec.Token(); err != nil || tok != json.Delim('[') {
		return nil, errors.New(`"plugins" is not an array`)
	}
	arr := &pluginsArray{open: int(dec.InputOffset())}
	for dec.More() {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, fmt.Errorf("reading plugins[%d]: %w", len(arr.elements), err)
		}
		end := int(dec.InputOffset())
		var entry struct {
			Type string `json:"type"`
		}
		if err := json.Unmarshal(raw, &entry); err != nil {
			return nil, fmt.Errorf("plugins[%d] is not an object: %w", len(arr.elements), err)
		}
		arr.elements = append(arr.elements, span{start: end - len(raw), end: end})
		arr.types = append(arr.types, entry.Type)
	}
	if _, err := dec.Token(); err != nil {
		return nil, fmt.Errorf("reading the end of plugins: %w", err)
	}
	return arr, nil
}

// separator is the text between two elements in the file's own style (",\n    "), used before an appended
// element so the edit reads like the rest of the file.
func (a *pluginsArray) separator(data []byte) []byte {
	n := len(a.elements)
	if n >= 2 {
		return data[a.elements[n-2].end:a.elements[n-1].start]
	}
	return append([]byte(","), data[a.open:a.elements[0].start]...)
}

// appendPlugin inserts entry after the last element: every byte of data is kept, in order.
func appendPlugin(data []byte, arr *pluginsArray, entry []byte) []byte {
	at := arr.elements[len(arr.elements)-1].end
	sep := arr.separator(data)
	out := make([]byte, 0, len(data)+len(sep)+len(entry))
	out = append(out, data[:at]...)
	out = append(out, sep...)
	out = append(out, entry...)
	return append(out, data[at:]...)
}

// removePlugins deletes the elements whose type is pluginType together with the separator before them (after
// them for the first element): the exact inverse of appendPlugin.
func removePlugins(data []byte, pluginType string) ([]byte, int, error) {
	removed := 0
	for {
		arr, err := locatePlugins(data)
		if err != nil {
			return nil, removed, err
		}
		i := indexOf(arr.types, pluginType)
		if i < 0 {
			return data, removed, nil
		}
		if len(arr.elements) == 1 {
			return nil, removed, fmt.Errorf("%s is the only plugin in the list: refusing to leave an empty list", pluginType)
		}
		cut := span{start: arr.elements[i].start, end: arr.elements[i].end}
		if i > 0 {
			cut.start = arr.elements[i-1].end
		} else {
			cut.end = arr.elements[1].start
		}
		data = append(append([]byte{}, data[:cut.start]...), data[cut.end:]...)
		removed++
	}
}

func indexOf(list []string, s string) int {
	for i, v := range list {
		if v == s {
			return i
		}
	}
	return -1
}

// wrapConf turns a single-plugin .conf into a one-element conflist whose element is the .conf's own bytes.
func wrapConf(conf []byte) ([]byte, error) {
	var head struct {
		CNIVersion string          `json:"cniVersion"`
		Name       string          `json:"name"`
		Type       string          `json:"type"`
		Plugins    json.RawMessage `json:"plugins"`
	}
	if err := json.Unmarshal(conf, &head); err != nil {
		return nil, fmt.Errorf("parsing: %w", err)
	}
	if head.Plugins != nil || head.Type == "" {
		return nil, errors.New(`it has no "type" (or has "plugins"): a .conf file holds one plugin; rename a list to .conflist`)
	}
	version, _ := json.Marshal(head.CNIVersion)
	name, _ := json.Marshal(head.Name)
	var out bytes.Buffer
	fmt.Fprintf(&out, "{\n  \"cniVersion\": %s,\n  \"name\": %s,\n  \"plugins\": [\n    %s\n  ]\n}\n", version, name, bytes.TrimSpace(conf))
	return out.Bytes(), nil
}

package cursor

import "strings"

// metaInfix joins an open_kfid and a metadata name into the key under which Memory and Dir keep the value,
// beside the cursors: "<open_kfid>#wxkf_<name>". It is the key kf used for the skip-history boundary
// ("#wxkf_history_before") before metadata had methods of its own, so those values are read as metadata.
const metaInfix = "#wxkf_"

func metaKey(openKfID, name string) string { return openKfID + metaInfix + name }

// accountOf returns the open_kfid a key of the cursor map belongs to: the key itself, or the part before a
// metadata suffix.
func accountOf(key string) string {
	if i := strings.LastIndex(key, metaInfix); i > 0 && validMetaName(key[i+len(metaInfix):]) {
		return key[:i]
	}
	return key
}

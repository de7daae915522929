package kf

// TEMPORARY until media.FitImage lands.
func fitImageTMP(b []byte, max int) ([]byte, string, error) { return b, "jpeg", nil }

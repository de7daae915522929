package redis

// RenewScriptHash is the SHA1 of the lease renewal script, for tests that hold renewals back.
var RenewScriptHash = renewScript.Hash()

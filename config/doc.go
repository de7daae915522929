// Package config loads a wxkf bot's settings the way chatgpt-on-wechat's wechatcom_kf channel
// does, for people moving a bot from it: config.json in a directory (the keys below; other keys,
// such as chatgpt-on-wechat's model settings, are ignored), then environment variables named by
// the key in upper case overriding it. The bot keeps the config.json and the cursor file it had.
//
//	cfg, err := config.Load(".") // ./config.json, then WECHATCOM_* environment variables
//	if err != nil { return err } // names the missing or malformed key
//	opts, closeStores, err := cfg.ChannelOptions()
//	if err != nil { return err }
//	defer closeStores()
//	ch, err := kf.NewChannel(cfg.KF(), opts...)
//
// The keys, their environment variables and defaults:
//
//	wechatcom_corp_id                         WECHATCOM_CORP_ID                         required
//	wechatcom_kf_secret                       WECHATCOM_KF_SECRET                       required
//	wechatcom_kf_token                        WECHATCOM_KF_TOKEN                        required
//	wechatcom_kf_aes_key                      WECHATCOM_KF_AES_KEY                      required, 43 characters
//	wechatcom_kf_port                         WECHATCOM_KF_PORT                         9899
//	wechatcom_kf_cursor_dir                   WECHATCOM_KF_CURSOR_DIR                   tmp
//	wechatcom_kf_skip_history_on_first_start  WECHATCOM_KF_SKIP_HISTORY_ON_FIRST_START  true
//	wechatcom_kf_api_base                     WECHATCOM_KF_API_BASE                     https://qyapi.weixin.qq.com
//	wechatcom_kf_redis_url                    WECHATCOM_KF_REDIS_URL                    empty: one process, local files
//
// Values in config.json may be JSON strings, numbers or booleans, as chatgpt-on-wechat writes them.
// The cursor directory holds wechatcom_kf_cursors.json, chatgpt-on-wechat's cursor file, in the
// same format (see package cursor), so a bot that moves keeps its place in the message stream; a
// relative directory is taken from the process's working directory, as chatgpt-on-wechat does.
// Packages that only need kf.Config do not need this package: it is a convenience for the
// chatgpt-on-wechat layout, used by the programs under examples/ and by cmd/wxkf.
package config

package config_test

import (
	"context"
	"log"
	"net/http"
	"time"

	"github.com/wxkf/wxkf/config"
	"github.com/wxkf/wxkf/kf"
)

// A bot moved from chatgpt-on-wechat: the same config.json and environment, the same cursor file.
func ExampleLoad() {
	cfg, err := config.Load(".")
	if err != nil {
		log.Fatal(err) // e.g. "config: wechatcom_kf_secret is required (set it in config.json or WECHATCOM_KF_SECRET)"
	}
	opts, closeStores, err := cfg.ChannelOptions()
	if err != nil {
		log.Fatal(err)
	}
	defer closeStores()
	ch, err := kf.NewChannel(cfg.KF(), opts...)
	if err != nil {
		log.Fatal(err)
	}
	defer ch.Shutdown(context.Background())
	mux := http.NewServeMux()
	mux.Handle("/wxkf/", ch)
	srv := &http.Server{Addr: cfg.Addr(), Handler: mux, ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second, IdleTimeout: time.Minute}
	log.Fatal(srv.ListenAndServe())
}

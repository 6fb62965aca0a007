kcqrs_test(config_loader_test SOURCES config/config_loader_test.cc LIBS kcqrs_config)

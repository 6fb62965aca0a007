# Embedding kcqrs (docs/embedding.md, issue 14): the public API an embedder
# calls, and the installed package it builds against.
kcqrs_test(topology_file_test SOURCES embed/topology_file_test.cc LIBS kcqrs_config)
kcqrs_test(embedding_test SOURCES embed/embedding_test.cc
           LIBS kcqrs_engine kcqrs_config spdlog::spdlog nlohmann_json::nlohmann_json)

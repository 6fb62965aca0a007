// Properties: librdkafka configuration, passed through unchanged.
//
// Keys and values are librdkafka's own ("bootstrap.servers",
// "transactional.id", "isolation.level", ...), so that anything librdkafka
// documents can be set from the YAML without this module knowing about it.
// An unknown key or a bad value makes the client's Create() return
// InvalidArgument naming the key.
#ifndef KCQRS_ENGINE_KAFKA_PROPERTIES_H_
#define KCQRS_ENGINE_KAFKA_PROPERTIES_H_

#include <map>
#include <string>

#include "kcqrs/status.h"

namespace kcqrs::kafka {

using Properties = std::map<std::string, std::string>;

// Whether librdkafka takes every property (a known key, a valid value),
// without creating a client: what Create() would refuse, found before
// anything starts (`kcqrs validate`). The error names the first bad one.
Status CheckProperties(const Properties& properties);

}  // namespace kcqrs::kafka

#endif  // KCQRS_ENGINE_KAFKA_PROPERTIES_H_

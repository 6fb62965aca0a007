# kcqrs on Debian 12, built exactly as the README builds it: the same
# scripts/setup installs the packages, the same Makefile target builds.
#   docker build -t kcqrs .
#   docker run --rm -p 8080:8080 kcqrs run /opt/kcqrs/examples/orders/topology.yaml \
#     --set http.listen=0.0.0.0:8080 --set kafka.bootstrap_servers=broker:9092
FROM debian:12 AS build
WORKDIR /src
COPY scripts/setup scripts/setup
RUN scripts/setup && rm -rf /var/lib/apt/lists/*
COPY . .
RUN make build
# The runtime image installs the Debian packages that own the shared
# libraries the binary links, found here so that the list cannot drift.
RUN ldd build/bin/kcqrs | awk '/=> \//{print $3}' | xargs -r dpkg -S 2>/dev/null \
      | cut -d: -f1 | sort -u > /src/runtime-packages

FROM debian:12
COPY --from=build /src/runtime-packages /tmp/runtime-packages
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive xargs -a /tmp/runtime-packages \
      apt-get install -y -qq --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* /tmp/runtime-packages
COPY --from=build /src/build/bin/kcqrs /usr/local/bin/kcqrs
COPY --from=build /src/examples /opt/kcqrs/examples
EXPOSE 8080
ENTRYPOINT ["kcqrs"]
CMD ["--help"]

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
      apt-get install -y -qq --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* /tmp/runtime-packages
# Not root: a user of its own, with a state directory it owns, so that a
# volume mounted there (deploy/compose.yaml, deploy/k8s/) starts writable.
# curl is for health checks (`curl -fsS localhost:8080/readyz`).
RUN groupadd --system --gid 10001 kcqrs \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/kcqrs --no-create-home \
      --shell /usr/sbin/nologin kcqrs \
 && install -d -o kcqrs -g kcqrs -m 0750 /var/lib/kcqrs
COPY --from=build /src/build/bin/kcqrs /usr/local/bin/kcqrs
COPY --from=build /src/examples /opt/kcqrs/examples
USER 10001:10001
WORKDIR /var/lib/kcqrs
EXPOSE 8080
ENTRYPOINT ["kcqrs"]
CMD ["--help"]

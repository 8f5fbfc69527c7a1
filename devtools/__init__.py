"""Development tools: the whole stack on one machine (devstack), the embedded MongoDB-wire
server (mongo_wire), demo data (demo), and the running stack that tests and benchmarks drive
(stack). Never imported by the web process or the workers."""

"""Live streams over Socket.IO: the handlers of the web process (app.live.handlers), the state
web and workers share in Redis, the ready list above all (app.live.ready), and the workers'
drain job that analyses the windows (app.live.drain). docs/PROTOCOL.md describes the protocol
for clients."""

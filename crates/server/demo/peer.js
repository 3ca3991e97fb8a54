// One remote peer: its RTCPeerConnection with perfect negotiation as
// PROTOCOL.md describes it (the existing peer is polite and offers on
// `#rtcio:init-offer`; the newcomer is impolite and waits for that offer),
// trickled candidates, and a DataChannel for peer-to-peer messages.

/** Payloads of the DataChannel (JSON): ping/pong for the round-trip time, wave, screen, bye. */
const CHANNEL = { label: "rtcio-demo", negotiated: true, id: 0, ordered: true };

export class Peer {
  /**
   * id/name: the remote socket id and display name; polite: true on the
   * existing peer (it offers). `send(data)` relays `data` to this peer inside
   * an `#rtcio:message` envelope. `events` gets `state`, `track`, `data` and
   * `closed` callbacks.
   */
  constructor({ id, name, polite, iceServers, local, send, events }) {
    this.id = id;
    this.name = name;
    this.polite = polite;
    this.iceServers = iceServers;
    this.local = local; // { stream, video (track or null), audio (track or null) }
    this.send = send;
    this.events = events;
    this.pc = null;
    this.dc = null;
    this.remote = new MediaStream();
    this.makingOffer = false;
    this.ignoreOffer = false;
    // Every signaling message is handled after the previous one finished: a
    // candidate must not reach the connection before its description.
    this.queue = Promise.resolve();
    this.leaving = false; // `#rtcio:peer-left` arrived while the connection was up
    this.hintAt = 0;
    this.media = null; // last media-state { mic, cam }
    this.rtt = null;
  }

  /** The connection state shown on the tile. */
  get state() {
    return this.pc?.connectionState ?? "waiting";
  }

  /** Polite side, on `#rtcio:init-offer`: open the connection and offer. */
  start() {
    this.#create();
    this.#attachLocal();
    this.#openChannel();
  }

  #create() {
    const pc = new RTCPeerConnection({ iceServers: this.iceServers });
    this.pc = pc;
    pc.onnegotiationneeded = async () => {
      try {
        this.makingOffer = true;
        await pc.setLocalDescription();
        this.send({ description: pc.localDescription.toJSON() });
      } catch (e) {
        console.warn("offer failed", e);
      } finally {
        this.makingOffer = false;
      }
    };
    pc.onicecandidate = ({ candidate }) => {
      if (candidate) this.send({ candidate: candidate.toJSON() });
    };
    pc.ontrack = ({ track }) => {
      for (const old of this.remote.getTracks()) if (old.kind === track.kind) this.remote.removeTrack(old);
      this.remote.addTrack(track);
      this.events.track(this);
    };
    pc.onconnectionstatechange = () => {
      const state = pc.connectionState;
      this.events.state(this);
      if (this.leaving && (state === "disconnected" || state === "failed" || state === "closed")) {
        this.events.closed(this, "left");
      } else if (state === "failed") {
        pc.restartIce();
      }
    };
  }

  /**
   * Sends our camera and microphone. Kinds we do not have still get a
   * receive-only transceiver on the offering side, so a receive-only page
   * still gets the other side's media without a second negotiation.
   */
  #attachLocal() {
    for (const kind of ["audio", "video"]) {
      const track = this.local[kind];
      const existing = this.pc.getTransceivers().find((t) => t.receiver.track.kind === kind && !t.sender.track);
      if (track) {
        this.pc.addTrack(track, this.local.stream);
      } else if (!existing && this.polite) {
        this.pc.addTransceiver(kind, { direction: "recvonly" });
      }
    }
  }

  #openChannel() {
    const dc = this.pc.createDataChannel(CHANNEL.label, CHANNEL);
    this.dc = dc;
    dc.onopen = () => {
      this.events.state(this);
      this.pinger = setInterval(() => this.message({ t: "ping", at: performance.now() }), 2000);
      this.message({ t: "ping", at: performance.now() });
    };
    dc.onclose = () => {
      clearInterval(this.pinger);
      if (this.leaving) this.events.closed(this, "left");
    };
    dc.onmessage = ({ data }) => {
      let msg;
      try {
        msg = JSON.parse(data);
      } catch {
        return;
      }
      if (msg.t === "ping") this.message({ t: "pong", at: msg.at });
      else if (msg.t === "pong") {
        this.rtt = Math.round(performance.now() - msg.at);
        // Answered a ping sent after the departure hint: the tab is alive, only its signaling blipped.
        if (this.leaving && msg.at >= this.hintAt) {
          this.leaving = false;
          clearTimeout(this.hintTimer);
        }
        this.events.state(this);
      } else this.events.data(this, msg);
    };
  }

  /** Sends `msg` over the DataChannel; false when it is not open. */
  message(msg) {
    if (this.dc?.readyState !== "open") return false;
    this.dc.send(JSON.stringify(msg));
    return true;
  }

  /** Handles the `data` of an `#rtcio:message` from this peer, in arrival order. */
  signal(data) {
    this.queue = this.queue.then(() => this.#signal(data)).catch((e) => console.warn("signaling failed", e));
  }

  async #signal({ description, candidate }) {
    if (description) {
      if (!this.pc) {
        // Impolite newcomer: the first offer creates the connection. Local
        // tracks go in after it, so they ride on the offered transceivers.
        this.#create();
        await this.pc.setRemoteDescription(description);
        this.#attachLocal();
        this.#openChannel();
        await this.pc.setLocalDescription();
        this.send({ description: this.pc.localDescription.toJSON() });
        return;
      }
      const pc = this.pc;
      const collision = description.type === "offer" && (this.makingOffer || pc.signalingState !== "stable");
      this.ignoreOffer = !this.polite && collision;
      if (this.ignoreOffer) return;
      await pc.setRemoteDescription(description); // rolls our offer back on a collision
      if (description.type === "offer") {
        await pc.setLocalDescription();
        this.send({ description: pc.localDescription.toJSON() });
      }
    } else if (candidate && this.pc) {
      try {
        await this.pc.addIceCandidate(candidate);
      } catch (e) {
        if (!this.ignoreOffer) console.warn("candidate refused", e);
      }
    }
  }

  /**
   * Sends `track` instead of the camera (a screen share) or the camera again
   * (`null`). Replacing the track needs no negotiation; a page that had no
   * camera turns its video transceiver to sending, which renegotiates.
   */
  setVideo(track) {
    if (!this.pc) return;
    const transceiver = this.pc.getTransceivers().find((t) => t.receiver.track.kind === "video" && !t.stopped);
    const next = track ?? this.local.video;
    if (!transceiver) {
      if (next) this.pc.addTrack(next, this.local.stream);
      return;
    }
    transceiver.sender.replaceTrack(next).catch((e) => console.warn("replaceTrack failed", e));
    if (next && (transceiver.direction === "recvonly" || transceiver.direction === "inactive")) {
      transceiver.sender.setStreams?.(this.local.stream); // not in every browser; the far side needs no stream
      transceiver.direction = "sendrecv";
    }
  }

  /**
   * `#rtcio:peer-left` is a hint: the server lost this peer's signaling
   * link, which may be a blip it recovers from. True when the peer should
   * go now (no working connection); otherwise it goes once WebRTC reports
   * the connection down, or when no DataChannel ping sent after the hint is
   * answered within `grace` ms; an answer cancels the hint.
   */
  hint(grace = 6000) {
    if (this.pc?.connectionState !== "connected") return true;
    if (this.leaving) return false;
    this.leaving = true;
    this.hintAt = performance.now();
    this.message({ t: "ping", at: this.hintAt });
    this.hintTimer = setTimeout(() => this.leaving && this.events.closed(this, "silent"), grace);
    return false;
  }

  /** ICE restart after our signaling link came back (the network may have changed). */
  nudge() {
    const state = this.pc?.connectionState;
    if (state === "disconnected" || state === "failed") this.pc.restartIce();
  }

  close() {
    clearInterval(this.pinger);
    clearTimeout(this.hintTimer);
    try {
      this.dc?.close();
      this.pc?.close();
    } catch {}
    for (const t of this.remote.getTracks()) this.remote.removeTrack(t);
  }
}

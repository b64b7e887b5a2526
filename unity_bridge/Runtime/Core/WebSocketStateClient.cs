// WebSocket client for ser-daemon's JSON messages (System.Net.WebSockets, plain C#).
using System;
using System.Net.WebSockets;
using System.Text;
using System.Threading;
using System.Threading.Tasks;

namespace SerDaemon.Bridge
{
    /// <summary>
    /// Connects to ser-daemon's WebSocket (default ws://127.0.0.1:8765), reads its JSON text messages
    /// (a hello, then one state per decision, and "status" messages when an input device comes or goes)
    /// on a background task into one reused buffer, and queues their bytes in a byte-bounded queue (the
    /// oldest go first). The main thread decodes them with TryDequeue(WsStateDecoder), which allocates
    /// nothing in the steady state. Reconnects after a lost connection unless AutoReconnect is false.
    /// Never throws out of its loop: failures show in LastError and the counters. Dispose does not wait
    /// for the connection to close (it aborts it), so it returns at once.
    /// </summary>
    public sealed class WebSocketStateClient : IDisposable
    {
        readonly Uri uri;
        readonly string token;
        readonly CancellationTokenSource cts = new CancellationTokenSource();
        readonly ByteQueue queue;
        byte[] dequeueBuffer = new byte[4096];
        Task task;
        ClientWebSocket socket;
        // Receive buffers, reused across messages and reconnects (background task only).
        readonly byte[] buffer = new byte[16 * 1024];
        byte[] message = new byte[16 * 1024];
        volatile bool connected;
        volatile string lastError;
        long received, malformed, connects;

        public bool AutoReconnect = true;
        /// <summary>A larger message is counted as malformed and skipped.</summary>
        public int MaxMessageBytes = 1 << 20;
        /// <summary>Default bound of the queue between the threads (about 130 of the daemon's states).</summary>
        public const int DefaultMaxQueuedBytes = 256 * 1024;
        public int ReconnectDelayMs = 1000;

        public bool IsConnected { get { return connected; } }
        public string LastError { get { return lastError; } }
        public long MessagesReceived { get { return Interlocked.Read(ref received); } }
        public long MessagesMalformed { get { return Interlocked.Read(ref malformed); } }
        public long MessagesDropped { get { return queue.Dropped; } }
        public long Connections { get { return Interlocked.Read(ref connects); } }
        /// <summary>True once the connection ended and no reconnect will follow.</summary>
        public bool IsFinished { get { return task != null && task.IsCompleted; } }

        /// <param name="url">ws://host:port/ (wss:// works where the runtime supports TLS).</param>
        /// <param name="token">sent as "Authorization: Bearer" when the daemon needs --ws-token.</param>
        /// <param name="maxQueuedBytes">bound of the queue between the threads; the oldest messages go first.</param>
        public WebSocketStateClient(string url, string token = null, int maxQueuedBytes = DefaultMaxQueuedBytes)
        {
            queue = new ByteQueue(maxQueuedBytes);
            uri = new Uri(url);
            if (uri.Scheme != "ws" && uri.Scheme != "wss") throw new ArgumentException("WebSocket URL must start with ws:// or wss://");
            this.token = token;
        }

        public void Start()
        {
            if (task != null) return;
            var ct = cts.Token;
            task = Task.Run(() => RunAsync(ct));
        }

        /// <summary>
        /// Decode the oldest waiting message with <paramref name="decoder"/> (its states, labels and stream
        /// order change); skips and counts malformed ones. Allocation-free in the steady state. One thread only.
        /// </summary>
        public bool TryDequeue(WsStateDecoder decoder)
        {
            int length;
            while (queue.TryDequeue(ref dequeueBuffer, out length))
            {
                if (decoder.Decode(dequeueBuffer, length)) return true;
                Interlocked.Increment(ref malformed);
                lastError = decoder.LastError;
            }
            return false;
        }

        /// <summary>The oldest waiting message as a new WsMessage tree (allocates; TryDequeue(WsStateDecoder) does not).</summary>
        public bool TryDequeue(out WsMessage message)
        {
            int length;
            message = null;
            while (queue.TryDequeue(ref dequeueBuffer, out length))
            {
                string error;
                if (WsMessage.TryDecode(Encoding.UTF8.GetString(dequeueBuffer, 0, length), out message, out error)) return true;
                Interlocked.Increment(ref malformed);
                lastError = error;
            }
            return false;
        }

        async Task RunAsync(CancellationToken ct)
        {
            while (!ct.IsCancellationRequested)
            {
                try
                {
                    await ReceiveOnce(ct).ConfigureAwait(false);
                }
                catch (OperationCanceledException) { break; }
                catch (Exception e)
                {
                    lastError = e.GetType().Name + ": " + e.Message;
                }
                finally
                {
                    connected = false;
                }
                if (!AutoReconnect || ct.IsCancellationRequested) break;
                try { await Task.Delay(ReconnectDelayMs, ct).ConfigureAwait(false); }
                catch (OperationCanceledException) { break; }
            }
        }

        async Task ReceiveOnce(CancellationToken ct)
        {
            using (var ws = new ClientWebSocket())
            {
                socket = ws;
                if (!string.IsNullOrEmpty(token)) ws.Options.SetRequestHeader("Authorization", "Bearer " + token);
                await ws.ConnectAsync(uri, ct).ConfigureAwait(false);
                connected = true;
                Interlocked.Increment(ref connects);
                int length = 0;
                bool tooBig = false;
                var memory = new Memory<byte>(buffer);
                while (ws.State == WebSocketState.Open && !ct.IsCancellationRequested)
                {
                    // The Memory<byte> overload returns a ValueTask of a struct: no Task or result object per
                    // receive, unlike the ArraySegment one (.NET Standard 2.1, in both of Unity 2021.3's profiles).
                    var r = await ws.ReceiveAsync(memory, ct).ConfigureAwait(false);
                    if (r.MessageType == WebSocketMessageType.Close)
                    {
                        try { await ws.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "", ct).ConfigureAwait(false); }
                        catch (Exception) { }
                        lastError = "closed by server: " + ws.CloseStatus + " " + ws.CloseStatusDescription;
                        break;
                    }
                    if (!tooBig)
                    {
                        if (length + r.Count > MaxMessageBytes) tooBig = true;
                        else
                        {
                            if (length + r.Count > message.Length) Array.Resize(ref message, Math.Min(MaxMessageBytes, Math.Max(message.Length * 2, length + r.Count)));
                            Buffer.BlockCopy(buffer, 0, message, length, r.Count);
                            length += r.Count;
                        }
                    }
                    if (!r.EndOfMessage) continue;
                    Interlocked.Increment(ref received);
                    if (tooBig || r.MessageType != WebSocketMessageType.Text)
                    {
                        Interlocked.Increment(ref malformed);
                        lastError = tooBig ? "message over MaxMessageBytes" : "binary message ignored";
                    }
                    else queue.Enqueue(message, 0, length);
                    length = 0;
                    tooBig = false;
                }
                socket = null;
            }
        }

        /// <summary>
        /// Stop: cancel and abort the connection, without waiting for the background task (it ends on
        /// its own within moments and touches nothing of the caller's after this).
        /// </summary>
        public void Dispose()
        {
            if (cts.IsCancellationRequested) return;
            cts.Cancel();
            var ws = socket;
            if (ws != null) { try { ws.Abort(); } catch (Exception) { } }
        }
    }
}

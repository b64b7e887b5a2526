// WebSocket client for ser-daemon's JSON messages (System.Net.WebSockets, plain C#).
using System;
using System.Collections.Concurrent;
using System.IO;
using System.Net.WebSockets;
using System.Text;
using System.Threading;
using System.Threading.Tasks;

namespace SerDaemon.Bridge
{
    /// <summary>
    /// Connects to ser-daemon's WebSocket (default ws://127.0.0.1:8765), reads its JSON text messages
    /// (a hello, then one state per decision) on a background task and queues them decoded for the
    /// main thread. Reconnects after a lost connection unless AutoReconnect is false. Never throws
    /// out of its loop: failures show in LastError and the counters.
    /// </summary>
    public sealed class WebSocketStateClient : IDisposable
    {
        readonly Uri uri;
        readonly string token;
        readonly CancellationTokenSource cts = new CancellationTokenSource();
        readonly ConcurrentQueue<WsMessage> queue = new ConcurrentQueue<WsMessage>();
        Task task;
        ClientWebSocket socket;
        volatile bool connected;
        volatile string lastError;
        long received, malformed, dropped, connects;

        public bool AutoReconnect = true;
        public int MaxMessageBytes = 1 << 20;
        public int MaxQueuedMessages = 256;
        public int ReconnectDelayMs = 1000;

        public bool IsConnected { get { return connected; } }
        public string LastError { get { return lastError; } }
        public long MessagesReceived { get { return Interlocked.Read(ref received); } }
        public long MessagesMalformed { get { return Interlocked.Read(ref malformed); } }
        public long MessagesDropped { get { return Interlocked.Read(ref dropped); } }
        public long Connections { get { return Interlocked.Read(ref connects); } }
        /// <summary>True once the connection ended and no reconnect will follow.</summary>
        public bool IsFinished { get { return task != null && task.IsCompleted; } }

        /// <param name="url">ws://host:port/ (wss:// works where the runtime supports TLS).</param>
        /// <param name="token">sent as "Authorization: Bearer" when the daemon needs --ws-token.</param>
        public WebSocketStateClient(string url, string token = null)
        {
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

        public bool TryDequeue(out WsMessage message)
        {
            return queue.TryDequeue(out message);
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
                var buffer = new byte[16 * 1024];
                var message = new MemoryStream();
                bool tooBig = false;
                while (ws.State == WebSocketState.Open && !ct.IsCancellationRequested)
                {
                    var r = await ws.ReceiveAsync(new ArraySegment<byte>(buffer), ct).ConfigureAwait(false);
                    if (r.MessageType == WebSocketMessageType.Close)
                    {
                        try { await ws.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "", ct).ConfigureAwait(false); }
                        catch (Exception) { }
                        lastError = "closed by server: " + ws.CloseStatus + " " + ws.CloseStatusDescription;
                        break;
                    }
                    if (!tooBig)
                    {
                        if (message.Length + r.Count > MaxMessageBytes) { tooBig = true; message.SetLength(0); }
                        else message.Write(buffer, 0, r.Count);
                    }
                    if (!r.EndOfMessage) continue;
                    Interlocked.Increment(ref received);
                    if (tooBig || r.MessageType != WebSocketMessageType.Text)
                    {
                        Interlocked.Increment(ref malformed);
                        lastError = tooBig ? "message over MaxMessageBytes" : "binary message ignored";
                    }
                    else
                    {
                        string text = Encoding.UTF8.GetString(message.GetBuffer(), 0, (int)message.Length);
                        WsMessage m;
                        string error;
                        if (WsMessage.TryDecode(text, out m, out error)) Enqueue(m);
                        else { Interlocked.Increment(ref malformed); lastError = error; }
                    }
                    message.SetLength(0);
                    tooBig = false;
                }
                socket = null;
            }
        }

        void Enqueue(WsMessage m)
        {
            queue.Enqueue(m);
            WsMessage old;
            while (queue.Count > MaxQueuedMessages && queue.TryDequeue(out old)) Interlocked.Increment(ref dropped);
        }

        public void Dispose()
        {
            if (cts.IsCancellationRequested) return;
            cts.Cancel();
            var ws = socket;
            if (ws != null) { try { ws.Abort(); } catch (Exception) { } }
            if (task != null) { try { task.Wait(1000); } catch (Exception) { } }
        }
    }
}

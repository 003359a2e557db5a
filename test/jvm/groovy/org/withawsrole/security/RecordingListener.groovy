package org.withawsrole.security

import com.sun.net.httpserver.HttpExchange
import com.sun.net.httpserver.HttpServer

import java.util.concurrent.CopyOnWriteArrayList

/**
 * A server a hostile Jenkinsfile would point the library at: records every request (method,
 * path, headers, body) and answers 503, as the one in the trust-boundary issue did. Loopback only.
 */
class RecordingListener implements Closeable {
    final List<Map<String, Object>> requests = new CopyOnWriteArrayList<Map<String, Object>>()
    private final HttpServer server

    RecordingListener() {
        server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0)
        server.createContext('/') { HttpExchange exchange ->
            requests << [method : exchange.requestMethod,
                         path   : exchange.requestURI.toString(),
                         headers: new LinkedHashMap(exchange.requestHeaders),
                         body   : exchange.requestBody.getText('UTF-8')]
            byte[] answer = '{"errors":["recording listener"]}'.getBytes('UTF-8')
            exchange.sendResponseHeaders(503, answer.length)
            exchange.responseBody.withStream { it.write(answer) }
        }
        server.start()
    }

    String getUrl() {
        return "http://127.0.0.1:${server.address.port}".toString()
    }

    @Override
    void close() {
        server.stop(0)
    }
}

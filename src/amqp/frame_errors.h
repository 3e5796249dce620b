// Connection errors about received frames and method arguments, with the reply texts RabbitMQ 3.x
// writes (rabbit_reader.erl, rabbit_misc:frame_error/2, rabbit_binary_parser:assert_utf8/1). Those
// texts print the offending bytes as Erlang terms, so the formatting lives here too.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "amqp/amqp_error.h"
#include "amqp/frame.h"

namespace warren::amqp {

// Erlang's ~w of a binary: <<0,1,104,105>>.
std::string erlang_binary(std::string_view bytes);
// Erlang's ~p of a binary: <<"hi">> when every byte is printable Latin-1 (with \n, \t... escaped),
// else as ~w. Erlang would also break a long line of byte values; this keeps it on one line.
std::string erlang_binary_pretty(std::string_view bytes);

// 501: a frame RabbitMQ's analyze_frame cannot read (see well_formed() in frame.h).
AmqpError unknown_frame(const Frame& f);
// 505: a well-formed frame that may not come here (a heartbeat on a channel, content on
// channel 0, anything on a channel before connection.open).
AmqpError unexpected_frame(const Frame& f);
// 501: a frame whose declared payload size is over frame_max.
AmqpError frame_too_large(uint8_t type, uint32_t size, uint32_t frame_max);
// 501: a frame not followed by the frame-end octet 0xCE.
AmqpError bad_frame_end(const Frame& f, uint8_t end);
// 501 with the method's ids: arguments that end early or are followed by more bytes.
AmqpError cannot_decode(uint16_t class_id, uint16_t method_id, std::string_view args);
// 501: a short string that is not UTF-8 (is_rabbit_utf8). RabbitMQ names no method for it when
// the method came on a channel (class and method ids 0).
AmqpError malformed_utf8();

}  // namespace warren::amqp

package broker

import (
	"context"
	"errors"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/weir-broker/weir/broker/metadata"
	"github.com/weir-broker/weir/broker/replica"
	"github.com/weir-broker/weir/log"
	"github.com/weir-broker/weir/log/batch"
)

// errorCode is the only mapping from internal errors (log, batch, replica,
// metadata) to Kafka error codes. Handlers set resp.ErrorCode from it. nil
// maps to 0; anything not recognised is UNKNOWN_SERVER_ERROR.
func errorCode(err error) int16 {
	if err == nil {
		return 0
	}
	if ke, ok := errors.AsType[*kerr.Error](err); ok {
		return ke.Code
	}
	for _, m := range errorCodes {
		if errors.Is(err, m.err) {
			return m.code.Code
		}
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return kerr.RequestTimedOut.Code
	}
	return kerr.UnknownServerError.Code
}

// errorMessage is err's text for a response's ErrorMessage, without the
// long description kerr gives each code ("This most likely occurs because
// ..."): the code already travels beside the message, and clients show the
// message to people, who need what went wrong, as Kafka's messages say it.
func errorMessage(err error) string {
	msg := err.Error()
	if ke, ok := errors.AsType[*kerr.Error](err); ok {
		if msg == ke.Error() {
			return ke.Message
		}
		msg = strings.Replace(msg, ke.Error()+": ", "", 1)
	}
	return msg
}

// errorCodes maps sentinels to codes, most specific first.
var errorCodes = []struct {
	err  error
	code *kerr.Error
}{
	{batch.ErrCorrupt, kerr.CorruptMessage},
	{metadata.ErrInvalidTopic, kerr.InvalidTopicException},
	{metadata.ErrTopicExists, kerr.TopicAlreadyExists},
	{metadata.ErrUnknownTopic, kerr.UnknownTopicOrPartition},
	{metadata.ErrInvalidPartitions, kerr.InvalidPartitions},
	{metadata.ErrInvalidReplicationFactor, kerr.InvalidReplicationFactor},
	{metadata.ErrInvalidReplicaAssignment, kerr.InvalidReplicaAssignment},
	{ErrInvalidConfig, kerr.InvalidConfig},
	{batch.ErrInvalidRecord, kerr.InvalidRecord},
	// Data path (replica, log).
	{replica.ErrPartitionClosed, kerr.NotLeaderForPartition},
	{replica.ErrMessageTooLarge, kerr.MessageTooLarge},
	{replica.ErrTransactionsUnsupported, kerr.InvalidTxnState},
	{replica.ErrNotEnoughReplicasAfterAppend, kerr.NotEnoughReplicasAfterAppend},
	{replica.ErrNotEnoughReplicas, kerr.NotEnoughReplicas},
	{replica.ErrRequestTimedOut, kerr.RequestTimedOut},
	{replica.ErrInvalidConfig, kerr.InvalidConfig},
	{replica.ErrInvalidTopic, kerr.InvalidTopicException},
	{replica.ErrPartitionExists, kerr.TopicAlreadyExists},
	{log.ErrOffsetOutOfRange, kerr.OffsetOutOfRange},
	{log.ErrInvalidProducerEpoch, kerr.InvalidProducerEpoch},
	{log.ErrProducerFenced, kerr.ProducerFenced},
	{log.ErrOutOfOrderSequence, kerr.OutOfOrderSequenceNumber},
	{log.ErrEmptyAppend, kerr.CorruptMessage},
	{log.ErrClosed, kerr.NotLeaderForPartition},
	{log.ErrCorrupt, kerr.KafkaStorageError},
}

// ErrInvalidConfig is returned for a topic config that is unknown, read-only
// or has a bad value; it maps to INVALID_CONFIG.
var ErrInvalidConfig = errors.New("broker: invalid config")

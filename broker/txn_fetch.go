package broker

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-broker/weir/log"
)

// appendAborted converts the log's aborted transactions to a fetch
// response's AbortedTransactions.
func appendAborted(dst []kmsg.FetchResponseTopicPartitionAbortedTransaction, aborted []log.AbortedTxn) []kmsg.FetchResponseTopicPartitionAbortedTransaction {
	for _, a := range aborted {
		at := kmsg.NewFetchResponseTopicPartitionAbortedTransaction()
		at.ProducerID, at.FirstOffset = a.ProducerID, a.FirstOffset
		dst = append(dst, at)
	}
	return dst
}

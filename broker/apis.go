package broker

import (
	"github.com/weir-broker/weir/broker/wire"
)

// handler serves one request of its API key. It runs on the connection's
// read goroutine, in arrival order, so requests from one connection are
// applied in order. It returns the response to send now, or
// wire.Response{Deferred: true} after arranging for r.Respond to be called
// later (a request parked in a purgatory: acks=all produce, long-poll
// fetch). An error closes the connection.
type handler func(s *Server, r *wire.Request) (wire.Response, error)

// api is one row of the table: a key, the versions we advertise and serve,
// and its handler.
type api struct {
	key      int16
	min, max int16
	handle   handler
}

// apiTable is the one table of the APIs this broker serves. It drives both
// dispatch and the ApiVersions answer, so what is advertised is exactly what
// is implemented. Ranges follow docs (kafka-clients research §2.2): they
// cover the versions pinned by librdkafka, sarama, kgo, kafka-go and
// kafka-python. Keep it sorted by key.
func apiTable() []api {
	return []api{
		{key: 0, min: 0, max: 9, handle: handleProduce},
		{key: 1, min: 4, max: 12, handle: handleFetch},
		{key: 2, min: 0, max: 6, handle: handleListOffsets},
		{key: 3, min: 0, max: 11, handle: handleMetadata},
		{key: 8, min: 0, max: 8, handle: handleOffsetCommit},
		{key: 9, min: 1, max: 8, handle: handleOffsetFetch},
		{key: 10, min: 0, max: 4, handle: handleFindCoordinator},
		{key: 11, min: 0, max: 9, handle: handleJoinGroup},
		{key: 12, min: 0, max: 4, handle: handleHeartbeat},
		{key: 13, min: 0, max: 5, handle: handleLeaveGroup},
		{key: 14, min: 0, max: 5, handle: handleSyncGroup},
		{key: 15, min: 0, max: 5, handle: handleDescribeGroups},
		{key: 16, min: 0, max: 4, handle: handleListGroups},
		{key: 18, min: 0, max: 3, handle: handleAPIVersions},
		{key: 19, min: 2, max: 7, handle: handleCreateTopics},
		{key: 20, min: 1, max: 6, handle: handleDeleteTopics},
		{key: 21, min: 0, max: 2, handle: handleDeleteRecords},
		{key: 22, min: 0, max: 4, handle: handleInitProducerID},
		{key: 24, min: 0, max: 3, handle: handleAddPartitionsToTxn},
		{key: 25, min: 0, max: 3, handle: handleAddOffsetsToTxn},
		{key: 26, min: 0, max: 3, handle: handleEndTxn},
		{key: 28, min: 0, max: 3, handle: handleTxnOffsetCommit},
		{key: 32, min: 1, max: 4, handle: handleDescribeConfigs},
		{key: 33, min: 0, max: 2, handle: handleAlterConfigs},
		{key: 35, min: 0, max: 4, handle: handleDescribeLogDirs},
		{key: 37, min: 0, max: 3, handle: handleCreatePartitions},
		{key: 42, min: 0, max: 2, handle: handleDeleteGroups},
		{key: 44, min: 0, max: 1, handle: handleIncrementalAlterConfigs},
		{key: 47, min: 0, max: 0, handle: handleOffsetDelete},
		{key: 60, min: 0, max: 1, handle: handleDescribeCluster},
		{key: 65, min: 0, max: 0, handle: handleDescribeTransactions},
		{key: 66, min: 0, max: 0, handle: handleListTransactions},
	}
}

// apiIndex is the table indexed by key for dispatch.
type apiIndex [128]*api

func newAPIIndex(table []api) *apiIndex {
	var idx apiIndex
	for i := range table {
		a := &table[i]
		if int(a.key) >= len(idx) || idx[a.key] != nil {
			panic("broker: api table: bad or duplicate key")
		}
		idx[a.key] = a
	}
	return &idx
}

func (idx *apiIndex) lookup(key int16) *api {
	if key < 0 || int(key) >= len(idx) {
		return nil
	}
	return idx[key]
}

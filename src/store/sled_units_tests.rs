//! Unit tests of the stored units' byte layout: postings, blocks, tail chunks.
use super::*;
use crate::chain::SignerId;

fn record(seq: u64) -> StoredRecord {
    StoredRecord {
        seq,
        time: LedgerTime::from_micros(seq as i64 * 1000),
        hash: [seq as u8; 32],
        signature: [7; 64],
        signer: SignerId([1; 8]),
        body: format!(
            "{{\"seq\":{seq},\"type\":\"key.used\",\"ip\":\"192.0.2.{}\"}}",
            seq % 200
        )
        .into_bytes(),
    }
}

/// Records `seqs` whose hashes chain from the first one's, as the writer's do.
fn chained(seqs: std::ops::RangeInclusive<u64>) -> Vec<StoredRecord> {
    let mut records: Vec<StoredRecord> = seqs.map(record).collect();
    for i in 1..records.len() {
        records[i].hash = crate::chain::chain_hash(&records[i - 1].hash, &records[i].body);
    }
    records
}

#[test]
fn postings_round_trip_and_are_found_by_term() {
    let a = attribute_term(&[3; 16]);
    let k = key_term(&Uuid::from_bytes([9; 16]));
    let entries = vec![
        (a, 900),
        (k, 5),
        (a, 7),
        (LIFECYCLE_TERM, 1),
        (k, 300),
        (a, 7),
    ];
    let bytes = encode_postings(entries);
    assert_eq!(lookup_postings(&bytes, &a, "t").unwrap(), vec![7, 900]);
    assert_eq!(lookup_postings(&bytes, &k, "t").unwrap(), vec![5, 300]);
    assert_eq!(
        lookup_postings(&bytes, &LIFECYCLE_TERM, "t").unwrap(),
        vec![1]
    );
    assert!(lookup_postings(&bytes, &key_term(&Uuid::nil()), "t")
        .unwrap()
        .is_empty());
    assert_eq!(all_postings(&bytes, "t").unwrap().len(), 5);
}

#[test]
fn a_block_round_trips_with_and_without_a_dictionary() {
    let records = chained(1..=1024);
    let dict = train_dictionary(&records).expect("bodies to learn from");
    let id = dictionary_id(&dict);
    let block = encode_block(&records, Some((&id, &dict))).unwrap();
    assert_eq!(block_header(&block, "b").unwrap().dictionary, id);
    assert_eq!(decode_block(&block, Some(&dict), "b").unwrap(), records);
    let plain = encode_block(&records, None).unwrap();
    assert_eq!(decode_block(&plain, None, "b").unwrap(), records);
}

#[test]
fn a_flipped_byte_or_a_lying_header_is_corruption() {
    let records = chained(1..=300);
    let block = encode_block(&records, None).unwrap();
    let mut flipped = block.clone();
    let at = flipped.len() - 40;
    flipped[at] ^= 0x10;
    assert!(matches!(
        decode_block(&flipped, None, "b"),
        Err(StoreError::Corrupt(_))
    ));
    let mut lying = block;
    lying[8] ^= 0x01; // the low byte of the first seq
    assert!(matches!(
        decode_block(&lying, None, "b"),
        Err(StoreError::Corrupt(_))
    ));
}

#[test]
fn a_block_stores_its_records_by_column_without_the_hashes_that_follow_and_older_blocks_still_read()
{
    let records = chained(1025..=2048);
    let chained_block = encode_block(&records, None).unwrap();
    assert_eq!(chained_block[0], BLOCK_COLUMNS);
    // The first layout of blocks: version 1, every record with its hash.
    let raw = encode_records(&records);
    let frame = zstd::bulk::compress(&raw, BLOCK_LEVEL).unwrap();
    let mut old = chained_block[..BLOCK_HEADER].to_vec();
    old[0] = UNIT_VERSION;
    old[BLOCK_HEADER - 36..BLOCK_HEADER - 32].copy_from_slice(&(raw.len() as u32).to_be_bytes());
    old.extend_from_slice(&frame);
    assert_eq!(decode_block(&old, None, "b").unwrap(), records);
    assert_eq!(decode_block(&chained_block, None, "b").unwrap(), records);
    assert!(
        chained_block.len() + 1023 * 30 < old.len(),
        "the hashes are not stored: {} against {} bytes",
        chained_block.len(),
        old.len()
    );
    // A changed body changes its hash and every later one: what their signatures no longer cover.
    let mut changed = records.clone();
    changed[10].body[2] ^= 0x01;
    let decoded = decode_block(&encode_block(&changed, None).unwrap(), None, "b").unwrap();
    assert_eq!(decoded[9].hash, records[9].hash);
    assert!((10..1024).all(|i| decoded[i].hash != records[i].hash));
    // After a gap (an archive's kept events) a record keeps its own hash; a time that runs backwards (a lie the
    // verifier names) is stored as it is.
    let mut kept: Vec<_> = [0usize, 1, 500, 501, 1023]
        .iter()
        .map(|&i| records[i].clone())
        .collect();
    kept[3].time = LedgerTime::from_micros(-7);
    let block = encode_block(&kept, None).unwrap();
    assert_eq!(decode_block(&block, None, "b").unwrap(), kept);
}

#[test]
fn a_tail_chunk_round_trips() {
    let records: Vec<_> = (5..9).map(record).collect();
    let bytes = encode_tail(&records, vec![(LIFECYCLE_TERM, 6)]);
    let chunk = decode_tail(&bytes, "t").unwrap();
    assert_eq!(chunk.records, records);
    assert_eq!(chunk.postings, vec![(LIFECYCLE_TERM, 6)]);
    assert_eq!(split_tail(&bytes, "t").unwrap().0, records[0].time);
}

#[test]
fn tail_chunks_are_compressed_and_chunks_written_before_compression_still_read() {
    let records: Vec<_> = (1..=64).map(record).collect();
    let compressed = encode_tail(&records, vec![(LIFECYCLE_TERM, 6)]);
    let raw = encode_records(&records);
    assert_eq!(compressed[0], TAIL_COMPRESSED);
    assert!(
        compressed.len() * 3 < raw.len(),
        "{} bytes for {} of records",
        compressed.len(),
        raw.len()
    );
    assert_eq!(decode_tail(&compressed, "t").unwrap().records, records);
    // The first block layout's chunk: version 1, the records as they are.
    let mut plain = vec![UNIT_VERSION];
    plain.extend_from_slice(&records[0].time.as_micros().to_be_bytes());
    plain.extend_from_slice(&(raw.len() as u32).to_be_bytes());
    plain.extend_from_slice(&raw);
    plain.extend_from_slice(&encode_postings(vec![(LIFECYCLE_TERM, 6)]));
    let chunk = decode_tail(&plain, "t").unwrap();
    assert_eq!(chunk.records, records);
    assert_eq!(chunk.postings, vec![(LIFECYCLE_TERM, 6)]);
}

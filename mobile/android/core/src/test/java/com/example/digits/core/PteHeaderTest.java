package com.example.digits.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertThrows;
import static org.junit.Assert.assertTrue;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import org.junit.Test;

public class PteHeaderTest {
    /** The head of a .pte as executorch 1.5.1 writes it: root offset, "ET12", then the 32-byte "eh00" header. */
    private static byte[] head(String identifier, long programSize, long segmentBase, long segmentSize) {
        ByteBuffer b = ByteBuffer.allocate(PteHeader.HEAD_BYTES).order(ByteOrder.LITTLE_ENDIAN);
        b.putInt(0x3c);
        b.put(identifier.getBytes(StandardCharsets.ISO_8859_1));
        b.put("eh00".getBytes(StandardCharsets.ISO_8859_1));
        b.putInt(32);
        b.putLong(programSize);
        b.putLong(segmentBase);
        b.putLong(segmentSize);
        return b.array();
    }

    @Test
    public void readsTheExtendedHeader() {
        // The digits model's .pte: program 0x810 bytes, XNNPACK segment of 0x263a8 bytes at 0x880.
        PteHeader h = PteHeader.parse(head("ET12", 0x810, 0x880, 0x263a8), 158760, "model.pte");
        assertEquals("ET12", h.identifier);
        assertEquals(0x810, h.programSize);
        assertEquals(0x880, h.segmentBaseOffset);
        assertEquals(0x263a8, h.segmentDataSize);
    }

    @Test
    public void aProgramWithoutExtendedHeaderIsAccepted() {
        byte[] bare = head("ET12", 0, 0, 0);
        bare[8] = 0;
        assertEquals(-1, PteHeader.parse(bare, 1000, "model.pte").programSize);
    }

    @Test
    public void refusesOtherFilesAndTruncatedCopies() {
        IllegalArgumentException other = assertThrows(IllegalArgumentException.class,
                () -> PteHeader.parse(head("TFL3", 0x810, 0x880, 0x263a8), 158760, "model.pte"));
        assertTrue(other.getMessage(), other.getMessage().contains("'TFL3'"));
        assertThrows(IllegalArgumentException.class,
                () -> PteHeader.parse(head("ET11", 0x810, 0x880, 0x263a8), 158760, "model.pte"));
        IllegalArgumentException cut = assertThrows(IllegalArgumentException.class,
                () -> PteHeader.parse(head("ET12", 0x810, 0x880, 0x263a8), 100000, "model.pte"));
        assertTrue(cut.getMessage(), cut.getMessage().contains("truncated"));
        assertThrows(IllegalArgumentException.class, () -> PteHeader.parse(new byte[6], 6, "model.pte"));
    }
}

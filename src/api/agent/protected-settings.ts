/**
 * Protected settings on the wire: CMS EnvelopedData (DER, base64) to the machine's certificate, RSA key
 * transport and AES-256-CBC, as WALinuxAgent's handlers expect (`openssl cms -decrypt` reads it).
 * Only the machine's private key opens it; the server keeps settings sealed with its own key.
 */
import forge from 'node-forge';

export function encryptToCertificate(value: unknown, certPem: string): string {
  const p7 = forge.pkcs7.createEnvelopedData();
  p7.addRecipient(forge.pki.certificateFromPem(certPem));
  p7.content = forge.util.createBuffer(Buffer.from(JSON.stringify(value), 'utf8').toString('binary'));
  p7.encrypt(undefined, forge.pki.oids['aes256-CBC'] as unknown as string);
  return Buffer.from(forge.asn1.toDer(p7.toAsn1()).getBytes(), 'binary').toString('base64');
}

/** The inverse, with the machine's key (tests and tools; the server never holds that key). */
export function decryptWithKey(base64: string, certPem: string, keyPem: string): unknown {
  const p7 = forge.pkcs7.messageFromAsn1(forge.asn1.fromDer(Buffer.from(base64, 'base64').toString('binary'))) as forge.pkcs7.PkcsEnvelopedData;
  const recipient = p7.findRecipient(forge.pki.certificateFromPem(certPem));
  if (!recipient) throw new Error('the certificate is not a recipient of this message');
  p7.decrypt(recipient, forge.pki.privateKeyFromPem(keyPem));
  const content = p7.content as forge.util.ByteStringBuffer | string;
  const bytes = typeof content === 'string' ? content : content.getBytes();
  return JSON.parse(Buffer.from(bytes, 'binary').toString('utf8'));
}
